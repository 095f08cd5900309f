// confab-airops.js: loaded before the unmodified @airops/airops-js SDK, it sends the SDK's Pusher
// WebSocket (hard-coded to ws-<cluster>.pusher.com) to a Confab server's /app/{key} endpoint by
// wrapping window.WebSocket for Pusher's hosts only. Every other WebSocket is left untouched.
//
//   <script src="confab-airops.js" data-host="https://confab.example.com"></script>
//   <script src="airops.umd.js"></script>
//   AirOps.default.identify({ ..., host: 'https://confab.example.com' })
//
// or, without the attribute, window.ConfabAirOps = { host: '...' } before this script, or
// ConfabAirOps.configure({ host: '...' }) before the first streamed call.
(function () {
  var g = typeof window !== 'undefined' ? window : globalThis;
  var Native = g.WebSocket;
  if (!Native || Native.confabAirOps) return;  // no WebSocket here, or already installed
  var preset = g.ConfabAirOps;
  var script = typeof document !== 'undefined' ? document.currentScript : null;
  var host = (preset && preset.host) || (script && script.getAttribute('data-host')) || '';
  // Pusher's socket hosts: ws-<cluster>.pusher.com, ws.pusherapp.com, sockjs(-<cluster>).pusher.com.
  var PUSHER_HOST = /^(ws|sockjs)(-[a-z0-9-]+)?\.pusher(app)?\.com$/i;

  // The Confab URL for a Pusher socket URL, or null to leave the URL alone.
  function rewrite(url) {
    var u;
    try {
      u = new URL(String(url), g.location ? g.location.href : undefined);
    } catch (e) {
      return null;
    }
    if (!PUSHER_HOST.test(u.hostname)) return null;
    if (!host) {
      if (g.console) g.console.warn('confab-airops: no Confab host configured (data-host); the Pusher socket goes to Pusher');
      return null;
    }
    var h = new URL(host, g.location ? g.location.href : undefined);
    var prefix = h.pathname.replace(/\/+$/, '');  // a Confab server behind a path prefix
    return (h.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + h.host + prefix + u.pathname + u.search;
  }

  function ConfabWebSocket(url, protocols) {
    var target = rewrite(url) || url;
    // Returning the native socket keeps it a real WebSocket (instanceof, events, binaryType).
    return protocols === undefined ? new Native(target) : new Native(target, protocols);
  }
  ConfabWebSocket.prototype = Native.prototype;
  ConfabWebSocket.CONNECTING = 0;
  ConfabWebSocket.OPEN = 1;
  ConfabWebSocket.CLOSING = 2;
  ConfabWebSocket.CLOSED = 3;
  ConfabWebSocket.confabAirOps = true;
  g.WebSocket = ConfabWebSocket;

  g.ConfabAirOps = {
    configure: function (options) {
      host = (options && options.host) || '';
    },
    get host() {
      return host;
    },
    rewrite: rewrite,
  };
})();
