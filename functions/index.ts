/**
 * The functions-framework entry module (package.json `main`). Each function lives in its own folder
 * as a thin composition root; this file only registers them, so one build serves every entry point:
 *   npx functions-framework --target=rawToBronze --signature-type=cloudevent
 */
import * as ff from '@google-cloud/functions-framework';
import { config } from '../shared/config';
import { rawToBronze } from './raw-to-bronze';
import { ingestHttp } from './ingest-http';
import { routeEvent } from './route-event';
import { loadWarehouse } from './load-warehouse';
import { pullSource } from './pull-source';
import { dashboard } from './dashboard';

// Fail at cold start on an invalid option (functions-framework exits), not on every event.
config();

ff.cloudEvent('rawToBronze', rawToBronze);
ff.http('ingestHttp', ingestHttp);
ff.cloudEvent('routeEvent', routeEvent);
ff.cloudEvent('loadWarehouse', loadWarehouse);
ff.cloudEvent('pullSource', pullSource);
ff.http('dashboard', dashboard);

export { rawToBronze, ingestHttp, routeEvent, loadWarehouse, pullSource, dashboard };
