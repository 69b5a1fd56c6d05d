// A director's role: active owns and announces the VIPs; standby keeps its
// maps filled and owns nothing, so that a takeover is only the announcement.
export const ROLES = ['active', 'standby'] as const;
export type Role = (typeof ROLES)[number];
