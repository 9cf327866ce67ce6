import createFetchClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, operations, paths } from './schema';

type Schemas = components['schemas'];
/** The one error body of every route: `{ error: { code, message, details? } }`. */
export type ErrorBody = Schemas['Error'];
export type Profile = Schemas['Profile'];
export type Interest = Schemas['Interest'];
export type Interests = Schemas['Interests'];
export type Similar = Schemas['Similar'];
export type Rule = Schemas['Rule'];
export type AudiencePreview = Schemas['AudiencePreview'];
export type Audience = Schemas['Audience'];
export type AudienceList = Schemas['AudienceList'];
export type AudienceMembers = Schemas['AudienceMembers'];
export type Followers = Schemas['Followers'];
export type FollowerOverlap = Schemas['FollowerOverlap'];
export type CatalogEntry = Schemas['CatalogEntry'];
export type Consent = Schemas['Consent'];
export type ErasureStarted = Schemas['ErasureStarted'];
export type Erasure = Schemas['Erasure'];
export type AudienceExplanation = Schemas['AudienceExplanation'];
export type ExplanationNode = Schemas['ExplanationNode'];
export type Model = Schemas['Model'];
export type Models = Schemas['Models'];
export type ModelTraining = Schemas['ModelTraining'];
export type PredictedTrait = paths['/v1/models/{trait}/train']['post']['parameters']['path']['trait'];
export type TargetType = paths['/v1/targets/{type}/{id}/followers']['get']['parameters']['path']['type'];

/**
 * A non-2xx answer. `body` is the API's error body as sent; `code` (`QRY_…`, listed in the query
 * API's README), `message` and `details` are read from it. An answer that is not the API's error
 * body (a proxy's HTML page, say) gets `code` `HTTP_<status>` and its text as the message.
 */
export class QueryApiError extends Error {
  readonly name = 'QueryApiError';
  readonly code: string;
  readonly details: unknown;

  constructor(
    /** The HTTP status. */
    readonly status: number,
    readonly body: ErrorBody,
    /** The answer's `X-Request-Id`, to find the request in the service's logs. */
    readonly requestId: string | undefined,
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
    this.code = body.error.code;
    this.details = body.error.details;
  }
}

export type QueryClientOptions = {
  /** Where the query API listens, e.g. `http://query-api:8081`. */
  baseUrl: string;
  /** A bearer token from the service's API_TOKENS, with the scopes of the routes you call. */
  token: string;
  /** A fetch to use instead of the global one (a proxy agent, a test transport, retries). */
  fetch?: (request: Request) => Promise<Response>;
  /** Headers sent with every request (say, your own `X-Request-Id`). */
  headers?: Record<string, string>;
};

type Answer<T> = { data?: T; error?: unknown; response: Response };

function isErrorBody(value: unknown): value is ErrorBody {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
}

/** The answer's body on 2xx; a QueryApiError carrying the error body otherwise. */
async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body: ErrorBody = isErrorBody(error)
    ? error
    : {
        error: {
          code: `HTTP_${response.status}`,
          message: typeof error === 'string' && error !== '' ? error : response.statusText,
        },
      };
  throw new QueryApiError(response.status, body, response.headers.get('x-request-id') ?? undefined);
}

/** Follows `nextCursor` from the first page to the last, yielding each page's items. */
async function* pages<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.items;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

/**
 * A client of the query API (docs/api.md). Every method resolves with the documented body and
 * rejects with a {@link QueryApiError} on any non-2xx answer; `raw` is the underlying
 * openapi-fetch client for calls this surface does not cover (it answers `{ data, error, response }`).
 */
export function createQueryClient(options: QueryClientOptions) {
  const raw: Client<paths> = createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { ...options.headers, authorization: `Bearer ${options.token}` },
    ...(options.fetch && { fetch: options.fetch }),
  });
  const id = (value: string) => ({ params: { path: { id: value } } });

  const audiences = {
    /** Who a rule matches right now: count and a sample (docs/api.md §5.4). */
    preview: (rule: Rule) => unwrap(raw.POST('/v1/audiences/preview', { body: { rule } })),
    /** Saves an audience; it stays current and its entries and exits are published. */
    create: (audience: { name: string; rule: Rule }) => unwrap(raw.POST('/v1/audiences', { body: audience })),
    list: () => unwrap(raw.GET('/v1/audiences')),
    get: (audienceId: string) => unwrap(raw.GET('/v1/audiences/{id}', id(audienceId))),
    delete: async (audienceId: string): Promise<void> => {
      await unwrap(raw.DELETE('/v1/audiences/{id}', id(audienceId)));
    },
    /**
     * Why a person is or is not in an audience (§5.4): the rule with `holds` on every node and the
     * value each leaf compared; give a `rule` or a saved `audienceId`.
     */
    explain: (request: { id: string } & ({ rule: Rule } | { audienceId: string })) =>
      unwrap(raw.POST('/v1/audiences/explain', { body: request })),
    /** One page of members (limit ≤ 1000); pass the previous page's `nextCursor` for the next. */
    members: (audienceId: string, query: { limit?: number; cursor?: string } = {}) =>
      unwrap(raw.GET('/v1/audiences/{id}/members', { params: { path: { id: audienceId }, query } })),
    /** Every member exactly once, page by page. */
    allMembers: (audienceId: string, pageSize = 1000): AsyncGenerator<string> =>
      pages(async (cursor) => {
        const page = await audiences.members(audienceId, { limit: pageSize, ...(cursor !== undefined && { cursor }) });
        return { items: page.members, nextCursor: page.nextCursor };
      }),
  };

  return {
    raw,
    /** A person's profile by userId or anonymousId (docs/api.md §5.1); 404 `QRY_PROFILE_NOT_FOUND` when unknown. */
    profile: (personId: string) => unwrap(raw.GET('/v1/profiles/{id}', id(personId))),
    /** One page of a person's interest tags, highest score first (§5.2); pass `nextCursor` for the next. */
    interests: (personId: string, query: { dimension?: string; limit?: number; cursor?: string } = {}) =>
      unwrap(raw.GET('/v1/profiles/{id}/interests', { params: { path: { id: personId }, query } })),
    /** Every interest tag of a person exactly once, page by page. */
    allInterests: (personId: string, query: { dimension?: string; pageSize?: number } = {}): AsyncGenerator<Interest> =>
      pages(async (cursor) => {
        const page = await unwrap(
          raw.GET('/v1/profiles/{id}/interests', {
            params: {
              path: { id: personId },
              query: {
                ...(query.dimension !== undefined && { dimension: query.dimension }),
                ...(query.pageSize !== undefined && { limit: query.pageSize }),
                ...(cursor !== undefined && { cursor }),
              },
            },
          }),
        );
        return { items: page.interests, nextCursor: page.nextCursor };
      }),
    /** The people most similar to a person (§5.3). */
    similar: (personId: string, query: { limit?: number } = {}) =>
      unwrap(raw.GET('/v1/profiles/{id}/similar', { params: { path: { id: personId }, query } })),
    audiences,
    followers: {
      /** Who follows a target (§5.5); a target nobody follows answers zeros. */
      of: (type: TargetType, targetId: string) =>
        unwrap(raw.GET('/v1/targets/{type}/{id}/followers', { params: { path: { type, id: targetId } } })),
      /** How the followers of two targets overlap. */
      overlap: (a: { type: TargetType; id: string }, b: { type: TargetType; id: string }) =>
        unwrap(
          raw.GET('/v1/targets/{type}/{id}/followers/overlap', {
            params: { path: a, query: { with: `${b.type}:${b.id}` } },
          }),
        ),
    },
    catalog: {
      get: (type: TargetType, targetId: string) =>
        unwrap(raw.GET('/v1/catalog/{type}/{id}', { params: { path: { type, id: targetId } } })),
      put: (type: TargetType, targetId: string, tags: string[]) =>
        unwrap(raw.PUT('/v1/catalog/{type}/{id}', { params: { path: { type, id: targetId } }, body: { tags } })),
    },
    privacy: {
      /** Opts a person in or out of personalization (§5.7). */
      setConsent: (personId: string, personalization: boolean) =>
        unwrap(raw.PUT('/v1/profiles/{id}/consent', { params: { path: { id: personId } }, body: { personalization } })),
      /** Starts erasing a person and every merged id; follow it with `erasure(erasureId)`. */
      erase: (personId: string) => unwrap(raw.DELETE('/v1/profiles/{id}', id(personId))),
      erasure: (erasureId: string) => unwrap(raw.GET('/v1/erasures/{erasureId}', { params: { path: { erasureId } } })),
    },
    models: {
      /** The predicted-trait models (§5.9): trained at, on how many, holdout accuracy beside the baseline. */
      list: () => unwrap(raw.GET('/v1/models')),
      /** Asks for a training of a trait's model now (`audiences:write`); `list()` shows when it is done. */
      train: (trait: PredictedTrait) => unwrap(raw.POST('/v1/models/{trait}/train', { params: { path: { trait } } })),
    },
    ops: {
      /** Consumer lag per group with Burrow's statuses (§5.8); needs the `ops:read` scope. */
      lag: () => unwrap(raw.GET('/ops/lag')),
      /** The last hour of lag, events/s and stalled partitions per group, and the DLQ's rate (what /ops charts). */
      lagHistory: () => unwrap(raw.GET('/ops/lag/history')),
    },
  };
}

export type QueryClient = ReturnType<typeof createQueryClient>;
