// Why is this person in, or not in, this audience (docs/api.md §5.4 explain): the saved audience's
// rule drawn as a tree, each node marked with whether it holds and each condition with the value
// it compared. Everything comes from the query API with the bearer token given in the URL fragment
// (#token=…), which never leaves the browser except in the Authorization header of these requests.
(function () {
  'use strict';
  var parts = location.pathname.split('/').map(decodeURIComponent); // ['', 'audiences', id, 'explain', profileId]
  var audienceId = parts[2];
  var person = parts.slice(4).join('/');
  var token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  var $ = function (id) {
    return document.getElementById(id);
  };

  function api(method, path, body) {
    var init = { method: method, headers: { Authorization: 'Bearer ' + token } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().then(function (json) {
        if (!res.ok)
          throw new Error((json.error && json.error.code + ': ' + json.error.message) || 'HTTP ' + res.status);
        return json;
      });
    });
  }

  var show = function (v) {
    return v === null || v === undefined
      ? 'none'
      : typeof v === 'number'
        ? String(Math.round(v * 100) / 100)
        : String(v);
  };
  var list = function (xs) {
    return xs.join(', ');
  };

  // What a leaf asks, in words, and what the person has.
  function describe(node) {
    if (node.interest)
      return ['interest ' + node.interest.tag + ' ≥ ' + node.interest.minValue, 'value ' + show(node.observed)];
    if (node.stage) return ['stage in ' + list(node.stage.in), 'stage ' + show(node.observed)];
    if (node.tier) {
      var which = node.tier.value ? 'value' : 'social';
      return [which + ' tier in ' + list(node.tier[which]), which + ' tier ' + show(node.observed)];
    }
    if (node.trait) {
      var t = node.trait;
      var v =
        t.op === 'exists' ? '' : ' ' + (Array.isArray(t.value) ? '[' + list(t.value) + ']' : JSON.stringify(t.value));
      return [
        'trait ' + t.name + ' ' + t.op + v,
        t.name + ' is ' + (node.observed === null ? 'not given' : JSON.stringify(node.observed)),
      ];
    }
    if (node.follows)
      return [
        'follows ' + node.follows.type + ':' + node.follows.id,
        node.observed ? 'follows it' : 'does not follow it',
      ];
    var d = node.did;
    var on = d.target ? ' on ' + d.target.type + ':' + d.target.id : d.tag ? ' tagged ' + d.tag : '';
    return [
      d.type + on + ' at least ' + d.atLeast + '× in the last ' + d.inLastDays + ' days',
      show(node.observed) + ' counted',
    ];
  }

  function draw(node) {
    var li = document.createElement('li');
    var line = document.createElement('span');
    line.className = 'node ' + (node.holds ? 'holds' : 'fails');
    var mark = document.createElement('span');
    mark.className = 'mark';
    mark.textContent = node.holds ? '✓' : '✗';
    var what = document.createElement('span');
    what.className = 'what';
    line.appendChild(mark);
    line.appendChild(what);
    var kids = node.all || node.any || (node.not ? [node.not] : null);
    if (kids) {
      what.textContent = node.all ? 'all of' : node.any ? 'any of' : 'not';
    } else {
      var words = describe(node);
      what.textContent = words[0];
      var seen = document.createElement('span');
      seen.className = 'observed';
      seen.textContent = '— ' + words[1];
      line.appendChild(seen);
      if (node.reason) {
        var why = document.createElement('span');
        why.className = 'reason';
        why.textContent = node.reason;
        line.appendChild(why);
      }
    }
    li.appendChild(line);
    if (kids) {
      var ul = document.createElement('ul');
      kids.forEach(function (k) {
        ul.appendChild(draw(k));
      });
      li.appendChild(ul);
    }
    return li;
  }

  $('person').textContent = person;
  $('audience').textContent = audienceId;
  Promise.all([
    api('GET', '/v1/audiences/' + encodeURIComponent(audienceId)),
    api('POST', '/v1/audiences/explain', { audienceId: audienceId, id: person }),
  ])
    .then(function (r) {
      var audience = r[0];
      var answer = r[1];
      $('audience').textContent = audience.name;
      $('person').textContent = answer.id;
      var verdict = $('verdict');
      verdict.textContent = answer.matches
        ? 'Yes: a member now'
        : 'No: not a member now' + (answer.reason ? ' (' + answer.reason + ')' : '');
      verdict.className = 'verdict ' + (answer.matches ? 'in' : 'out');
      var ul = document.createElement('ul');
      ul.appendChild(draw(answer.explanation));
      $('tree').appendChild(ul);
      $('page').hidden = false;
      $('status').textContent = 'Computed at ' + answer.computedAt;
      document.body.setAttribute('data-ready', 'true');
    })
    .catch(function (err) {
      $('status').textContent = String(err.message || err);
      $('status').className = 'error';
      document.body.setAttribute('data-ready', 'error');
    });
})();
