// The code node's standard library for webhook scripts, in every fresh QuickJS
// context of a script (see _script_worker.py).
//
// The worker joins this file into ONE line (comment lines dropped) so that every frame
// of it sits on line 1 and the user's script keeps its own line numbers: write full
// statements with semicolons and only whole-line comments.
//
// It is a function of the host functions (added by the worker, hidden by its runner):
// host.digest(alg, bytes) and host.hmac(alg, key, bytes) take and return binary strings
// (one char per byte); host.random(n) returns n random bytes the same way; host.uuid()
// a v4 UUID. The runner calls it the first time a script touches one of its globals
// (parsing it costs about 3 ms of QuickJS time, which scripts that never use it skip).
((host) => {
  'use strict';
  const define = (target, name, value) => Object.defineProperty(
    target, name, {value, writable: true, enumerable: false, configurable: true});

  // -- bytes ---------------------------------------------------------------------
  const utf8Encode = (text) => {
    text = String(text);
    const out = [];
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return new Uint8Array(out);
  };
  const utf8Decode = (bytes, fatal) => {
    let out = '';
    const bad = () => { if (fatal) throw new TypeError('The encoded data was not valid utf-8'); return 0xfffd; };
    for (let i = 0; i < bytes.length;) {
      const b = bytes[i];
      let c; let need = 0;
      if (b < 0x80) { c = b; } else if (b >= 0xc2 && b < 0xe0) { c = b & 31; need = 1; }
      else if (b >= 0xe0 && b < 0xf0) { c = b & 15; need = 2; } else if (b >= 0xf0 && b < 0xf5) { c = b & 7; need = 3; }
      else { out += String.fromCodePoint(bad()); i++; continue; }
      let j = 1;
      for (; j <= need; j++) {
        const n = bytes[i + j];
        if (n === undefined || (n & 0xc0) !== 0x80) break;
        c = (c << 6) | (n & 63);
      }
      if (j <= need || (need === 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (need === 3 && (c < 0x10000 || c > 0x10ffff))) {
        out += String.fromCodePoint(bad()); i += Math.max(1, j); continue;
      }
      out += String.fromCodePoint(c); i += need + 1;
    }
    return out;
  };
  const toBinary = (bytes) => {
    const parts = [];
    for (let i = 0; i < bytes.length; i += 8192) parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 8192)));
    return parts.join('');
  };
  // QuickJS-ng keeps long concatenations as ropes, which its Python binding cannot
  // take as arguments: what goes to the host is flattened first.
  const flat = (text) => [text].join('');
  const fromBinary = (text) => {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 255;
    return out;
  };
  const HEX = '0123456789abcdef';
  const toHex = (bytes) => {
    let out = '';
    for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
    return out;
  };
  const fromHex = (text) => {
    const out = [];
    for (let i = 0; i + 1 < text.length; i += 2) {
      const n = parseInt(text.substr(i, 2), 16);
      if (Number.isNaN(n)) break;
      out.push(n);
    }
    return new Uint8Array(out);
  };
  const toBase64 = (bytes) => btoa(toBinary(bytes));
  const fromBase64 = (text) => {
    text = String(text).replace(/[\s=]/g, '').replace(/-/g, '+').replace(/_/g, '/');
    while (text.length % 4) text += '=';
    return fromBinary(atob(text));
  };
  const encodings = {
    utf8: [utf8Encode, (b) => utf8Decode(b, false)],
    hex: [fromHex, toHex],
    base64: [fromBase64, toBase64],
    base64url: [fromBase64, (b) => toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')],
    latin1: [fromBinary, toBinary],
  };
  const ALIASES = {'utf-8': 'utf8', binary: 'latin1', ascii: 'latin1'};
  const encoding = (name) => {
    const key = String(name === undefined ? 'utf8' : name).toLowerCase();
    const found = encodings[ALIASES[key] || key];
    if (!found) throw new TypeError('Unknown encoding: ' + name + ' (known: utf8, hex, base64, base64url, latin1)');
    return found;
  };
  const asBytes = (data, inputEncoding) => {
    if (typeof data === 'string') return encoding(inputEncoding)[0](data);
    if (data instanceof Uint8Array) return data;
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    throw new TypeError('expected a string, a Buffer, a TypedArray or an ArrayBuffer, got ' + typeof data);
  };

  // -- TextEncoder, TextDecoder ------------------------------------------------------
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(text = '') { return utf8Encode(text); }
  }
  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      if (!['utf-8', 'utf8', 'unicode-1-1-utf-8'].includes(String(label).toLowerCase())) {
        throw new RangeError('TextDecoder: only utf-8 is available here, not ' + label);
      }
      this.fatal = Boolean(options && options.fatal);
    }
    get encoding() { return 'utf-8'; }
    decode(data) {
      if (data === undefined) return '';
      let text = utf8Decode(asBytes(data), this.fatal);
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      return text;
    }
  }

  // -- Buffer --------------------------------------------------------------------------
  class Buffer extends Uint8Array {
    static from(value, encodingOrOffset, length) {
      if (typeof value === 'string') return Buffer._wrap(encoding(encodingOrOffset)[0](value));
      if (value instanceof ArrayBuffer) return new Buffer(value, encodingOrOffset || 0, length === undefined ? value.byteLength - (encodingOrOffset || 0) : length);
      if (ArrayBuffer.isView(value)) return Buffer._wrap(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice());
      if (Array.isArray(value)) return Buffer._wrap(Uint8Array.from(value));
      if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer._wrap(Uint8Array.from(value.data));
      throw new TypeError('Buffer.from: expected a string, an array, a Buffer or an ArrayBuffer');
    }
    static _wrap(bytes) { return new Buffer(bytes.buffer, bytes.byteOffset, bytes.byteLength); }
    static alloc(size, fill = 0) { const b = new Buffer(size); b.fill(typeof fill === 'string' ? fill.charCodeAt(0) : fill); return b; }
    static isBuffer(value) { return value instanceof Buffer; }
    static byteLength(value, enc) { return asBytes(value, enc).length; }
    static concat(list, total) {
      const size = total === undefined ? list.reduce((n, b) => n + b.length, 0) : total;
      const out = Buffer.alloc(size);
      let at = 0;
      for (const b of list) { if (at >= size) break; out.set(b.subarray(0, size - at), at); at += b.length; }
      return out;
    }
    toString(enc, start = 0, end = this.length) { return encoding(enc)[1](this.subarray(start, end)); }
    toJSON() { return {type: 'Buffer', data: Array.from(this)}; }
    equals(other) {
      if (this.length !== other.length) return false;
      for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
      return true;
    }
    write(text, offset = 0, enc = 'utf8') { const b = encoding(enc)[0](text).subarray(0, this.length - offset); this.set(b, offset); return b.length; }
  }
  Object.defineProperty(Buffer, Symbol.species, {get: () => Buffer});

  // -- crypto ------------------------------------------------------------------------
  const ALGORITHMS = {sha1: 'sha1', sha256: 'sha256', sha512: 'sha512', md5: 'md5', sha384: 'sha384', sha224: 'sha224'};
  const algorithm = (name) => {
    const found = ALGORITHMS[String(name).toLowerCase().replace('-', '')];
    if (!found) throw new Error('Digest method not supported: ' + name + ' (known: ' + Object.keys(ALGORITHMS).join(', ') + ')');
    return found;
  };
  const output = (binary, enc) => {
    const bytes = fromBinary(binary);
    return enc === undefined ? Buffer._wrap(bytes) : encoding(enc)[1](bytes);
  };
  class Hash {
    constructor(alg, key) { this._alg = algorithm(alg); this._key = key; this._parts = []; this._done = false; }
    update(data, inputEncoding) {
      if (this._done) throw new Error('Digest already called');
      this._parts.push(asBytes(data, inputEncoding));
      return this;
    }
    digest(enc) {
      if (this._done) throw new Error('Digest already called');
      this._done = true;
      const data = toBinary(Buffer.concat(this._parts));
      const binary = this._key === undefined ? host.digest(this._alg, flat(data)) : host.hmac(this._alg, flat(this._key), flat(data));
      return output(binary, enc);
    }
  }
  const getRandomValues = (array) => {
    if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array) {
      throw new TypeError('getRandomValues: expected an integer TypedArray');
    }
    if (array.byteLength > 65536) throw new RangeError('getRandomValues: at most 65536 bytes at once');
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(fromBinary(host.random(array.byteLength)));
    return array;
  };
  const crypto = Object.freeze({
    createHash: (alg) => new Hash(alg),
    createHmac: (alg, key) => new Hash(alg, toBinary(asBytes(key))),
    timingSafeEqual: (a, b) => {
      a = asBytes(a); b = asBytes(b);
      if (a.length !== b.length) throw new RangeError('Input buffers must have the same byte length');
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
      return diff === 0;
    },
    randomUUID: () => host.uuid(),
    randomBytes: (size) => Buffer._wrap(fromBinary(host.random(size))),
    getRandomValues,
    getHashes: () => Object.keys(ALGORITHMS),
  });

  // -- URLSearchParams, URL ------------------------------------------------------------
  const formEncode = (text) => encodeURIComponent(text).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const percentDecode = (text) => {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  };
  const formDecode = (text) => percentDecode(text.replace(/\+/g, ' '));
  class URLSearchParams {
    constructor(init = '', owner) {
      this._list = [];
      this._owner = owner;
      if (typeof init === 'string') { this._parse(init); }
      else if (init instanceof URLSearchParams) { this._list = init._list.map((p) => p.slice()); }
      else if (init && typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const items = Array.from(pair);
          if (items.length !== 2) throw new TypeError('URLSearchParams: each pair must have exactly two items');
          this._list.push([String(items[0]), String(items[1])]);
        }
      } else if (init && typeof init === 'object') {
        for (const key of Object.keys(init)) this._list.push([key, String(init[key])]);
      }
    }
    _parse(text) {
      this._list = [];
      text = String(text);
      if (text.startsWith('?')) text = text.slice(1);
      for (const part of text.split('&')) {
        if (!part) continue;
        const at = part.indexOf('=');
        this._list.push(at < 0 ? [formDecode(part), ''] : [formDecode(part.slice(0, at)), formDecode(part.slice(at + 1))]);
      }
    }
    _changed() { if (this._owner) this._owner._setQuery(this.toString()); }
    get size() { return this._list.length; }
    append(name, value) { this._list.push([String(name), String(value)]); this._changed(); }
    delete(name) { this._list = this._list.filter((p) => p[0] !== String(name)); this._changed(); }
    get(name) { const found = this._list.find((p) => p[0] === String(name)); return found ? found[1] : null; }
    getAll(name) { return this._list.filter((p) => p[0] === String(name)).map((p) => p[1]); }
    has(name) { return this._list.some((p) => p[0] === String(name)); }
    set(name, value) {
      name = String(name);
      const at = this._list.findIndex((p) => p[0] === name);
      if (at < 0) { this._list.push([name, String(value)]); }
      else { this._list[at][1] = String(value); this._list = this._list.filter((p, i) => i <= at || p[0] !== name); }
      this._changed();
    }
    sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._changed(); }
    forEach(fn, self) { for (const [k, v] of this._list) fn.call(self, v, k, this); }
    keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
    values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
    entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map((p) => formEncode(p[0]) + '=' + formEncode(p[1])).join('&'); }
  }
  const SPECIAL = {'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21', 'file:': ''};
  const PARTS = /^([a-zA-Z][a-zA-Z0-9+.-]*:)?(\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$/;
  const encodePath = (text) => text.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => encodeURIComponent(c));
  const encodeQuery = (text) => text.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g, (c) => encodeURIComponent(c));
  const removeDots = (path) => {
    const out = [];
    const segments = path.split('/');
    segments.forEach((segment, i) => {
      if (segment === '..') { if (out.length > 1) out.pop(); if (i === segments.length - 1) out.push(''); }
      else if (segment === '.') { if (i === segments.length - 1) out.push(''); }
      else { out.push(segment); }
    });
    return out.join('/');
  };
  class URL {
    constructor(url, base) {
      url = String(url).trim().replace(/[\t\n\r]/g, '');
      let parts = PARTS.exec(url);
      if (!parts) throw new TypeError('Invalid URL: ' + url);
      if (!parts[1]) {
        if (base === undefined) throw new TypeError('Invalid URL: ' + url);
        const b = base instanceof URL ? base : new URL(base);
        if (parts[2] !== undefined) { parts = PARTS.exec(b.protocol + url); }
        else {
          let path = b.pathname;
          let search = parts[5];
          if (parts[4]) path = parts[4].startsWith('/') ? parts[4] : path.slice(0, path.lastIndexOf('/') + 1) + parts[4];
          else if (search === undefined) search = b.search;
          parts = PARTS.exec(b.protocol + '//' + (b.username ? b.username + (b.password ? ':' + b.password : '') + '@' : '') + b.host + path + (search || '') + (parts[6] || ''));
        }
      }
      const protocol = parts[1].toLowerCase();
      const special = protocol in SPECIAL;
      let authority = parts[3];
      if (special && authority === undefined) throw new TypeError('Invalid URL: ' + url);
      this._protocol = protocol;
      this._username = ''; this._password = ''; this._hostname = ''; this._port = '';
      if (authority !== undefined) {
        const at = authority.lastIndexOf('@');
        if (at >= 0) {
          const info = authority.slice(0, at);
          const colon = info.indexOf(':');
          this._username = colon < 0 ? info : info.slice(0, colon);
          this._password = colon < 0 ? '' : info.slice(colon + 1);
          authority = authority.slice(at + 1);
        }
        const port = /:(\d*)$/.exec(authority);
        if (port) { authority = authority.slice(0, port.index); this._port = port[1] === SPECIAL[protocol] ? '' : port[1]; }
        if (port && port[1] && Number(port[1]) > 65535) throw new TypeError('Invalid URL: ' + url);
        if (/[\s<>^|%\\]/.test(authority) || (special && protocol !== 'file:' && !authority)) throw new TypeError('Invalid URL: ' + url);
        this._hostname = special ? authority.toLowerCase() : authority;
      }
      let path = encodePath(parts[4] || '');
      if (special) path = removeDots(path.startsWith('/') ? path : '/' + path);
      this._pathname = path;
      this._search = parts[5] && parts[5] !== '?' ? encodeQuery(parts[5]) : '';
      this._hash = parts[6] && parts[6] !== '#' ? '#' + encodeQuery(parts[6].slice(1)) : '';
      this._params = new URLSearchParams(this._search, this);
    }
    _setQuery(text) { this._search = text ? '?' + text : ''; }
    get protocol() { return this._protocol; }
    get username() { return this._username; }
    get password() { return this._password; }
    get hostname() { return this._hostname; }
    get port() { return this._port; }
    get host() { return this._hostname + (this._port ? ':' + this._port : ''); }
    get origin() { return this._protocol in SPECIAL && this._protocol !== 'file:' ? this._protocol + '//' + this.host : 'null'; }
    get pathname() { return this._pathname; }
    set pathname(value) { this._pathname = encodePath(String(value)); }
    get search() { return this._search; }
    set search(value) { value = String(value); this._search = value && value !== '?' ? encodeQuery(value.startsWith('?') ? value : '?' + value) : ''; this._params._parse(this._search); }
    get searchParams() { return this._params; }
    get hash() { return this._hash; }
    set hash(value) { value = String(value); this._hash = value && value !== '#' ? (value.startsWith('#') ? value : '#' + value) : ''; }
    get href() {
      const auth = this._username ? this._username + (this._password ? ':' + this._password : '') + '@' : '';
      const slashes = this._protocol in SPECIAL || this._hostname ? '//' : '';
      return this._protocol + slashes + auth + this.host + this._pathname + this._search + this._hash;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    static canParse(url, base) { try { new URL(url, base); return true; } catch (e) { return false; } }
  }

  // -- globals and require -------------------------------------------------------------
  const modules = {
    crypto, buffer: Object.freeze({Buffer}), url: Object.freeze({URL, URLSearchParams}),
    util: Object.freeze({TextEncoder, TextDecoder}),
  };
  const require = (name) => {
    const key = String(name).replace(/^node:/, '');
    if (Object.prototype.hasOwnProperty.call(modules, key)) return modules[key];
    throw new Error("require('" + name + "'): no such module here. Available: " + Object.keys(modules).join(', ') + ' (there is no network or file access)');
  };
  define(globalThis, 'require', require);
  define(globalThis, 'crypto', crypto);
  define(globalThis, 'Buffer', Buffer);
  define(globalThis, 'TextEncoder', TextEncoder);
  define(globalThis, 'TextDecoder', TextDecoder);
  define(globalThis, 'URL', URL);
  define(globalThis, 'URLSearchParams', URLSearchParams);
})
