// The merchant page (docs/api.md §5.5, seed 000): who follows my shop. Every number comes from the
// query API with the bearer token given in the URL fragment (#token=…), which never leaves the
// browser except in the Authorization header of these requests.
(function () {
  'use strict';
  var parts = location.pathname.split('/').map(decodeURIComponent); // ['', 'merchant', type, id]
  var target = { type: parts[2], id: parts.slice(3).join('/') };
  var token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  var other = new URLSearchParams(location.search).get('with') || '';
  var $ = function (id) {
    return document.getElementById(id);
  };

  function api(path) {
    return fetch(path, { headers: { Authorization: 'Bearer ' + token } }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok)
          throw new Error((body.error && body.error.code + ': ' + body.error.message) || 'HTTP ' + res.status);
        return body;
      });
    });
  }

  function bars(el, rows, total, format) {
    el.textContent = '';
    var max = Math.max(
      1,
      total === undefined
        ? Math.max.apply(
            null,
            rows
              .map(function (r) {
                return r[1];
              })
              .concat([0]),
          )
        : total,
    );
    if (rows.length === 0) {
      el.textContent = 'none yet';
      return;
    }
    rows.forEach(function (r) {
      var row = document.createElement('div');
      row.className = 'row';
      var label = document.createElement('span');
      label.className = 'label';
      label.textContent = r[0];
      label.title = r[0];
      var bar = document.createElement('div');
      bar.className = 'bar';
      var fill = document.createElement('div');
      fill.className = 'fill';
      fill.style.width = ((100 * r[1]) / max).toFixed(1) + '%';
      bar.appendChild(fill);
      var num = document.createElement('span');
      num.className = 'num';
      num.textContent = format ? format(r[1]) : String(r[1]);
      row.appendChild(label);
      row.appendChild(bar);
      row.appendChild(num);
      el.appendChild(row);
    });
  }
  var entries = function (o) {
    return Object.keys(o).map(function (k) {
      return [k, o[k]];
    });
  };

  // Under a given-trait mix: how many of the followers who did not give it are predicted as what (§5.9).
  function predictedNote(el, counts, what) {
    var rows = entries(counts)
      .filter(function (r) {
        return r[1] > 0;
      })
      .sort(function (a, b) {
        return b[1] - a[1];
      });
    var note = document.createElement('p');
    note.className = 'note predicted';
    note.textContent =
      rows.length === 0
        ? 'No ' + what + ' predicted yet for followers who gave none.'
        : 'Predicted from behaviour for followers who gave no ' +
          what +
          ': ' +
          rows
            .map(function (r) {
              return r[0] + ' ' + r[1];
            })
            .join(', ') +
          '.';
    el.appendChild(note);
  }
  var pct = function (x) {
    return (100 * x).toFixed(1) + '%';
  };

  function trend(daily) {
    var xs = daily.map(function (d) {
      return Date.parse(d.date + 'T00:00:00Z') / 1000;
    });
    var el = $('trend');
    el.textContent = '';
    new uPlot(
      {
        width: Math.max(320, el.clientWidth || 1000),
        height: 240,
        scales: { x: { time: true } },
        series: [
          {},
          { label: 'follows', stroke: '#3d7be0', fill: 'rgba(61,123,224,0.12)', width: 2 },
          { label: 'unfollows', stroke: '#d9534f', width: 2 },
        ],
        axes: [{}, { label: 'per day' }],
      },
      [
        xs,
        daily.map(function (d) {
          return d.follows;
        }),
        daily.map(function (d) {
          return d.unfollows;
        }),
      ],
      el,
    );
  }

  function render(f) {
    $('target').textContent = f.target.type + ' ' + f.target.id;
    $('followers').textContent = String(f.followers);
    $('follows30').textContent = String(
      f.daily.reduce(function (s, d) {
        return s + d.follows;
      }, 0),
    );
    $('unfollows30').textContent = String(
      f.daily.reduce(function (s, d) {
        return s + d.unfollows;
      }, 0),
    );
    trend(f.daily);
    bars($('stages'), entries(f.stages), f.followers);
    bars($('tiers'), entries(f.tiers.value), f.followers);
    bars(
      $('gender'),
      entries(f.traits.gender).sort(function (a, b) {
        return b[1] - a[1];
      }),
      f.followers,
    );
    bars($('age'), entries(f.traits.ageBand), f.followers);
    predictedNote($('gender'), f.traits.predicted.gender, 'gender');
    predictedNote($('age'), f.traits.predicted.ageBand, 'age');
    bars(
      $('cities'),
      f.traits.city.map(function (c) {
        return [c.value, c.count];
      }),
      f.followers,
    );
    bars(
      $('interests'),
      f.topInterests.map(function (i) {
        return [i.tag, i.share];
      }),
      1,
      pct,
    );
    $('sample').textContent = f.sample.exact
      ? '(all ' + f.sample.size + ' followers who allow it)'
      : '(sample of ' + f.sample.size + ')';
  }

  function renderOverlap(o) {
    $('overlap-section').hidden = false;
    $('other').textContent = o.b.target.type + ' ' + o.b.target.id;
    var a = o.a.target.type + ':' + o.a.target.id;
    var b = o.b.target.type + ':' + o.b.target.id;
    bars($('overlap'), [
      [a, o.a.followers],
      [b, o.b.followers],
      ['both', o.both],
    ]);
    $('jaccard').textContent = 'Jaccard ' + o.jaccard.toFixed(3) + (o.exact ? '' : ' (estimated from a sample)');
  }

  var base = '/v1/targets/' + encodeURIComponent(target.type) + '/' + encodeURIComponent(target.id) + '/followers';
  $('with').value = other;
  $('compare').addEventListener('submit', function (e) {
    e.preventDefault();
    var q = new URLSearchParams(location.search);
    q.set('with', $('with').value.trim());
    location.search = q.toString();
  });
  Promise.all([api(base), other ? api(base + '/overlap?with=' + encodeURIComponent(other)) : null])
    .then(function (r) {
      $('page').hidden = false;
      render(r[0]);
      if (r[1]) renderOverlap(r[1]);
      $('status').textContent = 'Computed at ' + r[0].computedAt;
      document.body.setAttribute('data-ready', 'true');
    })
    .catch(function (err) {
      $('status').textContent = String(err.message || err);
      $('status').className = 'error';
      document.body.setAttribute('data-ready', 'error');
    });
})();
