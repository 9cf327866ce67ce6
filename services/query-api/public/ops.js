// The /ops page: reads the same JSON the API serves (/ops/lag and /ops/lag/history) with an
// ops:read token and draws it with uPlot. The token comes from the URL fragment (#token=…),
// which never reaches a server log, or from this browser's storage after being typed once.
(function () {
  'use strict';
  var REFRESH_MS = 5000;
  var STORE = 'pstream-ops-token';
  var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];
  var charts = {};
  var $ = function (id) {
    return document.getElementById(id);
  };

  function token() {
    var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      localStorage.setItem(STORE, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname);
    }
    return localStorage.getItem(STORE);
  }

  function get(path) {
    return fetch(path, { headers: { authorization: 'Bearer ' + token() } }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        localStorage.removeItem(STORE);
        askToken();
        throw new Error('the token was refused (' + res.status + ')');
      }
      if (res.status === 503) return null;
      if (!res.ok) throw new Error(path + ' answered ' + res.status);
      return res.json();
    });
  }

  function askToken() {
    $('token-form').hidden = false;
    $('board').hidden = true;
  }

  function cell(text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function badge(status) {
    var span = document.createElement('span');
    span.className = 'status status-' + status;
    span.textContent = status;
    return span;
  }

  function lastRate(history, group, topic) {
    var h = history.groups.find(function (g) {
      return g.group === group && g.topic === topic;
    });
    var p = h && h.points[h.points.length - 1];
    return p ? p.eventsPerSec : 0;
  }

  function renderTable(lag, history) {
    var body = $('groups');
    body.textContent = '';
    var stalled = 0;
    var total = 0;
    lag.groups.forEach(function (g) {
      var tr = document.createElement('tr');
      var bad = g.partitions.filter(function (p) {
        return p.status !== 'OK';
      });
      stalled += g.partitions.filter(function (p) {
        return p.status === 'STALL' || p.status === 'STOP';
      }).length;
      total += g.lag;
      tr.appendChild(cell(g.group));
      tr.appendChild(cell(g.topic));
      var st = cell('');
      st.appendChild(badge(g.status));
      tr.appendChild(st);
      tr.appendChild(cell(String(g.lag), 'num'));
      tr.appendChild(cell(lastRate(history, g.group, g.topic).toFixed(1), 'num'));
      var parts = cell('');
      if (bad.length === 0) parts.textContent = '—';
      bad.forEach(function (p) {
        var s = badge(p.status);
        s.textContent = 'p' + p.partition + ' ' + p.status + ' (lag ' + p.lag + ')';
        parts.appendChild(s);
        parts.appendChild(document.createTextNode(' '));
      });
      tr.appendChild(parts);
      body.appendChild(tr);
    });
    $('stalled').textContent = String(stalled);
    $('stalled').className = 'value' + (stalled > 0 ? ' bad' : '');
    $('total-lag').textContent = String(total);
  }

  // uPlot wants one x array and one y array per series, aligned: the union of sample times.
  function align(seriesList) {
    var times = {};
    seriesList.forEach(function (s) {
      s.points.forEach(function (p) {
        times[p.at] = true;
      });
    });
    var xs = Object.keys(times)
      .map(Number)
      .sort(function (a, b) {
        return a - b;
      });
    var data = [
      xs.map(function (t) {
        return t / 1000;
      }),
    ];
    seriesList.forEach(function (s) {
      var byAt = {};
      s.points.forEach(function (p) {
        byAt[p.at] = p.y;
      });
      data.push(
        xs.map(function (t) {
          return t in byAt ? byAt[t] : null;
        }),
      );
    });
    return data;
  }

  function draw(id, names, data) {
    var el = $(id);
    var width = Math.max(400, Math.min(1100, window.innerWidth - 80));
    var key = names.join('\u0000');
    var chart = charts[id];
    if (chart && chart.key === key) {
      chart.plot.setData(data);
      return;
    }
    if (chart) chart.plot.destroy();
    var series = [{}].concat(
      names.map(function (name, i) {
        return { label: name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true };
      }),
    );
    charts[id] = {
      key: key,
      plot: new uPlot({ width: width, height: 220, series: series, axes: [{}, { size: 60 }] }, data, el),
    };
  }

  function renderCharts(history) {
    var names = history.groups.map(function (g) {
      return g.group + ' / ' + g.topic;
    });
    var pick = function (field) {
      return history.groups.map(function (g) {
        return {
          points: g.points.map(function (p) {
            return { at: p.at, y: p[field] };
          }),
        };
      });
    };
    draw('lag-chart', names, align(pick('lag')));
    draw('rate-chart', names, align(pick('eventsPerSec')));
    var dlq = history.dlq.map(function (p) {
      return { at: p.at, y: p.perSec };
    });
    draw('dlq-chart', ['DLQ'], align([{ points: dlq }]));
    // The tile shows the last minute's mean (single rounds are jumpy), by the server's clock.
    var since = (dlq.length > 0 ? dlq[dlq.length - 1].at : 0) - 60000;
    var recent = dlq.filter(function (p) {
      return p.at >= since;
    });
    var mean =
      recent.reduce(function (sum, p) {
        return sum + p.y;
      }, 0) / Math.max(1, recent.length);
    $('dlq').textContent = mean.toFixed(2);
  }

  function refresh() {
    if (!token()) return askToken();
    Promise.all([get('/ops/lag'), get('/ops/lag/history')])
      .then(function (r) {
        var lag = r[0];
        var history = r[1];
        $('problem').hidden = true;
        if (!lag || !history) {
          $('updated').textContent = 'no lag sample yet; retrying';
          return;
        }
        $('board').hidden = false;
        $('token-form').hidden = true;
        renderTable(lag, history);
        renderCharts(history);
        $('updated').textContent = 'sampled at ' + lag.at;
      })
      .catch(function (err) {
        $('problem').textContent = String(err.message || err);
        $('problem').hidden = false;
      });
  }

  $('token-form').addEventListener('submit', function (e) {
    e.preventDefault();
    localStorage.setItem(STORE, $('token').value);
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
