/**
 * dashboard — the read-only web dashboard as a private HTTP function (IAM invokers only, no public
 * access): the pages, the charting libraries and the fixed-query JSON API over the Gold dataset. Its
 * service account reads Gold only (plus bigquery.jobUser to run the queries).
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { createDashboard } from '../../shared/composition/dashboard';
import { dashboardHandler, type DashboardHandler } from '../../shared/dashboard/http';
import { runtime } from '../../shared/composition/runtime';

let handler: Promise<DashboardHandler> | undefined;

export async function dashboard(req: Request, res: Response): Promise<void> {
  // One service per instance: its answers stay cached until the Gold tables change.
  handler ??= createDashboard(runtime().cfg).then((w) => dashboardHandler(w.service));
  (await handler)(req, res);
}
