import { Registry } from 'prom-client';
import { createSegmentCounters, MAX_NAMES } from '../src/segment-counters';

describe('counters of ignored Segment calls', () => {
  it('counts per source, type and name, cutting names and capping how many a source can create', async () => {
    const registry = new Registry();
    const counters = createSegmentCounters(registry);
    counters.ignored('web', 'track', 'Checkout Started');
    counters.ignored('web', 'track', 'Checkout Started');
    counters.ignored('web', 'page', 'x'.repeat(100));
    for (let i = 0; i < MAX_NAMES + 5; i += 1) counters.ignored('app', 'track', `name ${i}`);
    counters.ignored('app', 'track', 'name 0');
    counters.mapped('web', 'page');
    const text = await registry.metrics();
    expect(text).toContain('ingest_events_ignored_total{source="web",type="track",name="Checkout Started"} 2');
    expect(text).toContain(`ingest_events_ignored_total{source="web",type="page",name="${'x'.repeat(64)}"} 1`);
    expect(text).toContain('ingest_events_ignored_total{source="app",type="track",name="name 0"} 2');
    expect(text).toContain('ingest_events_ignored_total{source="app",type="track",name="(other)"} 5');
    expect(text.match(/source="app"/g)).toHaveLength(MAX_NAMES + 1);
    expect(text).toContain('ingest_views_mapped_total{source="web",type="page"} 1');
  });
});
