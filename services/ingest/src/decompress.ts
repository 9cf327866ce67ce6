import type { Readable, Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import { HttpError } from '@pstream/http';
import type { FastifyRequest } from 'fastify';
import { IngestErrors } from './errors';

type Counted = Transform & { receivedEncodedLength?: number };

/**
 * A `preParsing` hook: bodies sent with `Content-Encoding: gzip` or `deflate` (Segment's and
 * RudderStack's SDKs may compress) are inflated as they stream in. Fastify then applies its body
 * limit to the inflated bytes and stops reading past it, so a small compressed "zip bomb" is cut
 * off at 512 KB instead of being inflated whole. `receivedEncodedLength` lets Fastify check the
 * Content-Length against the bytes actually received on the wire.
 */
export async function decompressBody(request: FastifyRequest, _reply: unknown, payload: Readable): Promise<Readable> {
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return payload;
  if (encoding !== 'gzip' && encoding !== 'x-gzip' && encoding !== 'deflate') {
    throw new HttpError(
      415,
      IngestErrors.UNSUPPORTED_MEDIA_TYPE,
      `Content-Encoding "${encoding}" is not supported; use gzip, deflate or none`,
    );
  }
  const inflate: Counted = encoding === 'deflate' ? createInflate() : createGunzip();
  inflate.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => {
    inflate.receivedEncodedLength! += chunk.length;
  });
  // A corrupt stream is the client's fault: 400, not 500.
  inflate.on('error', (err: Error & { statusCode?: number }) => {
    err.statusCode = 400;
  });
  payload.pipe(inflate);
  return inflate;
}
