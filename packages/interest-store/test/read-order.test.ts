import { compareUtf8 } from '../src/read';

describe('compareUtf8 (the order Redis gives members with equal scores)', () => {
  it('orders strings exactly as their UTF-8 bytes, surrogate pairs and U+E000-FFFF included', () => {
    const strings = [
      '',
      'a',
      'ab',
      'b',
      'category:dress',
      'category:dresses',
      'brand:é',
      'brand:e',
      'brand:\u00ff',
      'brand:\u0100',
      'brand:\u07ff',
      'brand:\u0800',
      'brand:\ud7ff',
      'brand:\ue000',
      'brand:\uffff',
      'brand:😀',
      'brand:😀x',
      'brand:\u{10ffff}',
      'brand:\u{10000}',
      'brand:ﬀ',
    ];
    const sign = (n: number) => Math.sign(n);
    for (const a of strings)
      for (const b of strings)
        expect([a, b, sign(compareUtf8(a, b))]).toEqual([a, b, sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))]);
  });
});
