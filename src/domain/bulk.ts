// Bulk commands: which jobs a filter selects, and the running tally a command reports (how many
// jobs, to which destinations). Pure values, shared by the API and every store driver.

import type { ErrorKind } from './attempt.js';
import type { JobStatus } from './job.js';

export type BulkAction = 'retry' | 'cancel';

/** The statuses each command may select, and selects when the filter names none. */
export const BULK_STATUSES: Readonly<Record<BulkAction, { allowed: readonly JobStatus[]; default: readonly JobStatus[] }>> = {
  retry: { allowed: ['failed', 'cancelled'], default: ['failed'] },
  cancel: { allowed: ['scheduled', 'queued', 'retrying'], default: ['scheduled', 'queued', 'retrying'] },
};

/** Which jobs a bulk command selects. Every field given narrows the selection. */
export interface JobSelector {
  tenant_id?: string;
  type?: string;
  /** The destination URL's origin, as `new URL(url).origin` spells it (the rate limiter's key). */
  origin?: string;
  /** Walked in this order; BULK_STATUSES[action].default when absent. */
  statuses?: readonly JobStatus[];
  /** completed_at in [completed_from, completed_before): for failed jobs, when they failed. */
  completed_from?: number;
  completed_before?: number;
  /** created_at in [created_from, created_before). */
  created_from?: number;
  created_before?: number;
  /** The error kind of the job's last attempt. */
  error_kind?: ErrorKind;
  last_status_code?: number;
}

/** Destination origins named in a tally at most; jobs to further origins are counted, not named. */
export const MAX_TALLY_ORIGINS = 100;

export interface BulkTally {
  jobs: number;
  /** Jobs per destination origin, for the first MAX_TALLY_ORIGINS origins met. */
  destinations: Record<string, number>;
}

export interface BulkProgress {
  /** Where the walk goes on (opaque to callers). */
  cursor: string;
  /** The walk is over, or the command's limit is reached. */
  done: boolean;
  tally: BulkTally;
}

export const BULK_START: BulkProgress = Object.freeze({ cursor: '', done: false, tally: Object.freeze({ jobs: 0, destinations: Object.freeze({}) }) });

/** The origin of a stored destination URL (always absolute http/https: validated at creation). */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid';
  }
}

/** The tally with these destination URLs added, one job each. */
export function addToTally(tally: BulkTally, urls: readonly string[]): BulkTally {
  const destinations = { ...tally.destinations };
  let listed = Object.keys(destinations).length;
  for (const url of urls) {
    const origin = originOf(url);
    const n = destinations[origin];
    if (n !== undefined) destinations[origin] = n + 1;
    else if (listed < MAX_TALLY_ORIGINS) {
      destinations[origin] = 1;
      listed++;
    }
  }
  return { jobs: tally.jobs + urls.length, destinations };
}
