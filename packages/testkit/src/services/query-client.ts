import { createQueryClient, type QueryClient } from '@pstream/client';
import type { FastifyInstance } from 'fastify';

/**
 * @pstream/client on a query API built in-process (`buildApp`, not listening), as the end-to-end
 * tests build it: each request the client makes goes through Fastify's `inject` — the same
 * routing, validation and serialization as over a socket. test/client.int.test.ts runs the client
 * over a real socket.
 */
export function queryClient(app: FastifyInstance, token = 'dev-api-token'): QueryClient {
  return createQueryClient({
    baseUrl: 'http://query-api.test',
    token,
    fetch: async (request) => {
      const url = new URL(request.url);
      const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
      const res = await app.inject({
        method: request.method as 'GET',
        url: url.pathname + url.search,
        headers: Object.fromEntries(request.headers),
        ...(body && { payload: body }),
      });
      const headers = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) headers.append(name, String(v));
      }
      return new Response(res.statusCode === 204 ? null : res.rawPayload, { status: res.statusCode, headers });
    },
  });
}
