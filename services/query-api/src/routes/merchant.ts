import { readFileSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { targetParams } from './catalog';
import { assetHeaders, withPageHeaders } from './page-headers';

const PUBLIC_DIR = path.resolve(__dirname, '../../public');
/** uPlot's browser build, from the npm package, served by us: the page loads nothing from elsewhere. */
const UPLOT_DIR = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));

/**
 * `GET /merchant/{type}/{id}`: the merchant page (seed 000) — follower trends as a chart, the
 * audience mix as bars, the overlap with a competitor (`?with=type:id`). The page is a static
 * shell holding no data; its script reads everything from the followers routes with the token
 * in the URL fragment (`#token=…`, which browsers never send to the server), so the data needs
 * profiles:read like any other read.
 */
export async function registerMerchantPage(app: FastifyInstance): Promise<void> {
  const html = readFileSync(path.join(PUBLIC_DIR, 'merchant.html'), 'utf8');
  await app.register(fastifyStatic, {
    root: [PUBLIC_DIR, UPLOT_DIR],
    prefix: '/merchant/assets/',
    decorateReply: false,
    allowedPath: (p) => /^\/(merchant\.(js|css)|uPlot\.(iife\.min\.js|min\.css))$/.test(p),
    schemaHide: true,
    setHeaders: assetHeaders,
  });
  app
    .withTypeProvider<ZodTypeProvider>()
    .get('/merchant/:type/:id', { schema: { hide: true, params: targetParams } }, async (_request, reply) =>
      withPageHeaders(reply).type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(html),
    );
}
