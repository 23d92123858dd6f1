// The API's shapes, as the generated client types them.
import type { paths } from '../../src/client/schema.js';

export type Job = paths['/v1/jobs/{id}']['get']['responses'][200]['content']['application/json'];
export type Attempt = paths['/v1/jobs/{id}/attempts']['get']['responses'][200]['content']['application/json']['data'][number];
export type Destination = paths['/v1/destinations']['get']['responses'][200]['content']['application/json']['data'][number];
export type Schedule = paths['/v1/schedules/{id}']['get']['responses'][200]['content']['application/json'];
