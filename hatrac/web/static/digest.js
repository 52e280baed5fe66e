// Incremental MD5 and SHA-256 over Uint8Array pieces, and base64 of a digest.
// MD5 is written here because SubtleCrypto has none (the server's Content-MD5
// check needs it); SHA-256 too, because SubtleCrypto cannot hash a file in
// pieces. Both follow RFC 1321 and FIPS 180-4 and are checked against the
// server's own digests by the browser tests.

const MD5_SHIFT = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const MD5_K = new Int32Array(64);
for (let i = 0; i < 64; i++) MD5_K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

class BlockHash {
  constructor(size) {
    this.block = new Uint8Array(64);
    this.filled = 0;
    this.length = 0; // bytes hashed so far
  }

  update(data) {
    let offset = 0;
    this.length += data.length;
    if (this.filled) {
      const take = Math.min(64 - this.filled, data.length);
      this.block.set(data.subarray(0, take), this.filled);
      this.filled += take;
      offset = take;
      if (this.filled < 64) return this;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; offset + 64 <= data.length; offset += 64) this.compress(data, offset);
    if (offset < data.length) {
      this.block.set(data.subarray(offset), 0);
      this.filled = data.length - offset;
    }
    return this;
  }

  pad(littleEndian) {
    const bits = this.length * 8;
    const tail = new Uint8Array(((this.filled + 8) >> 6) * 64 + 64 - this.filled);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    const low = bits >>> 0;
    const high = Math.floor(bits / 2 ** 32) >>> 0;
    if (littleEndian) {
      view.setUint32(tail.length - 8, low, true);
      view.setUint32(tail.length - 4, high, true);
    } else {
      view.setUint32(tail.length - 8, high, false);
      view.setUint32(tail.length - 4, low, false);
    }
    const length = this.length;
    this.update(tail);
    this.length = length;
  }
}

export class MD5 extends BlockHash {
  constructor() {
    super();
    this.state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
    this.words = new Int32Array(16);
  }

  compress(bytes, offset) {
    const x = this.words;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      x[i] = bytes[j] | (bytes[j + 1] << 8) | (bytes[j + 2] << 16) | (bytes[j + 3] << 24);
    }
    let [a, b, c, d] = this.state;
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
      else { f = c ^ (b | ~d); g = (7 * i) & 15; }
      const s = MD5_SHIFT[(i >> 4) * 4 + (i & 3)];
      const sum = (a + f + MD5_K[i] + x[g]) | 0;
      a = d; d = c; c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    const st = this.state;
    st[0] = (st[0] + a) | 0; st[1] = (st[1] + b) | 0;
    st[2] = (st[2] + c) | 0; st[3] = (st[3] + d) | 0;
  }

  digest() {
    this.pad(true);
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    this.state.forEach((word, i) => view.setInt32(i * 4, word, true));
    return out;
  }
}

const SHA_K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class SHA256 extends BlockHash {
  constructor() {
    super();
    this.state = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.words = new Int32Array(64);
  }

  compress(bytes, offset) {
    const w = this.words;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = this.state;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + SHA_K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    const st = this.state;
    [a, b, c, d, e, f, g, h].forEach((v, i) => { st[i] = (st[i] + v) | 0; });
  }

  digest() {
    this.pad(false);
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    this.state.forEach((word, i) => view.setInt32(i * 4, word, false));
    return out;
  }
}

export function base64(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

export function md5Base64(bytes) {
  return base64(new MD5().update(bytes).digest());
}

// SHA-256 of one buffer: SubtleCrypto where the page is a secure context, else ours.
export async function sha256Base64(bytes) {
  if (globalThis.crypto && crypto.subtle) {
    return base64(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }
  return base64(new SHA256().update(bytes).digest());
}
