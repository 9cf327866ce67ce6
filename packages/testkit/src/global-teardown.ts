/** Stops the containers global-setup started, if any. */
export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __pstreamStops?: (() => Promise<unknown>)[] }).__pstreamStops ?? [];
  await Promise.all(stops.map((stop) => stop()));
}
