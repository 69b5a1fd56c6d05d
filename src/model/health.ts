// A backend's health, as its service's health checks judge it. Pure.

/** The health checks' verdict on a backend: 'none' when its service has no check. */
export type Health = 'none' | 'up' | 'down';
