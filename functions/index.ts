/**
 * The functions-framework entry module (package.json `main`). Each function lives in its own folder
 * as a thin composition root; this file only registers them, so one build serves every entry point:
 *   npx functions-framework --target=rawToBronze --signature-type=cloudevent
 *
 * Each entry point's module is loaded on its first call, not here: a deployed instance serves one
 * entry point, and its cold start should not load the five others' dependencies (busboy, the Pub/Sub
 * client, the dashboard's specs): loading this module took 105 instead of 150 ms (median of 7,
 * alternating), the entry point's own module then loading on the first event. The wrappers keep the
 * handlers' arity (functions-framework reads a two-argument CloudEvent function as callback style).
 */
import * as ff from '@google-cloud/functions-framework';
import { streamedBody } from '../shared/adapters/http/streamed-body';
import { config } from '../shared/config';

/* eslint-disable @typescript-eslint/no-require-imports -- each loaded on first call, see above */
const rawToBronze = (): typeof import('./raw-to-bronze') => require('./raw-to-bronze');
const ingestHttp = (): typeof import('./ingest-http') => require('./ingest-http');
const routeEvent = (): typeof import('./route-event') => require('./route-event');
const loadWarehouse = (): typeof import('./load-warehouse') => require('./load-warehouse');
const pullSource = (): typeof import('./pull-source') => require('./pull-source');
const dashboard = (): typeof import('./dashboard') => require('./dashboard');
/* eslint-enable @typescript-eslint/no-require-imports */
type Event<F extends (ce: never) => unknown> = Parameters<F>[0];

// Fail at cold start on an invalid option (functions-framework exits), not on every event.
config();

ff.cloudEvent('rawToBronze', (ce: Event<typeof import('./raw-to-bronze').rawToBronze>) =>
  rawToBronze().rawToBronze(ce),
);
// Marked here too: functions-framework decides from the registered function whether to parse the body.
ff.http(
  'ingestHttp',
  streamedBody((req, res) => ingestHttp().ingestHttp(req, res)),
);
ff.cloudEvent('routeEvent', (ce: Event<typeof import('./route-event').routeEvent>) =>
  routeEvent().routeEvent(ce),
);
ff.cloudEvent('loadWarehouse', (ce: Event<typeof import('./load-warehouse').loadWarehouse>) =>
  loadWarehouse().loadWarehouse(ce),
);
ff.cloudEvent('pullSource', (ce: Event<typeof import('./pull-source').pullSource>) =>
  pullSource().pullSource(ce),
);
ff.http('dashboard', (req, res) => dashboard().dashboard(req, res));
