(function(){
  function sortTable(table, key, desc){
    var ths = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = ths.findIndex(function(th){ return th.dataset.key === key; });
    if (col < 0) return false;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y), c;
      if (!isNaN(nx) && !isNaN(ny) && String(nx) !== 'NaN') c = nx - ny; else c = String(x).localeCompare(String(y));
      return desc ? -c : c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    ths.forEach(function(th){ th.classList.remove('sorted-asc', 'sorted-desc'); });
    ths[col].classList.add(desc ? 'sorted-desc' : 'sorted-asc');
    return true;
  }
  function applyFilters(){
    var sel = {};
    document.querySelectorAll('select.filter').forEach(function(s){ if (s.value) sel[s.dataset.key] = s.value; });
    var traces = document.querySelectorAll('article.trace'), shown = 0;
    traces.forEach(function(t){
      var ok = Object.keys(sel).every(function(k){ return t.dataset[k] === sel[k]; });
      t.hidden = !ok; if (ok) shown++;
    });
    document.querySelectorAll('div.tgroup').forEach(function(g){
      g.hidden = !g.querySelector('article.trace:not([hidden])');
    });
    var c = document.getElementById('trace-count');
    if (c) c.textContent = 'showing ' + shown + ' of ' + traces.length;
    return shown;
  }
  function init(){
    var q = new URLSearchParams(window.location.search);
    document.querySelectorAll('select.filter').forEach(function(s){
      var v = q.get(s.dataset.key);
      if (v !== null && Array.prototype.some.call(s.options, function(o){ return o.value === v; })) s.value = v;
      s.addEventListener('change', applyFilters);
    });
    applyFilters();
    document.querySelectorAll('table.sortable').forEach(function(t){
      Array.prototype.forEach.call(t.tHead.rows[0].cells, function(th){
        if (!th.dataset.key) return;
        th.addEventListener('click', function(){ sortTable(t, th.dataset.key, th.classList.contains('sorted-asc')); });
      });
    });
    var results = document.getElementById('results-table');
    if (results && q.get('sort')) sortTable(results, q.get('sort'), q.get('desc') === '1');
  }
  window.thinklingReport = {applyFilters: applyFilters, sortTable: sortTable};
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
