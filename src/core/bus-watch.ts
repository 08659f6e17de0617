/**
 * Remembers when the bus went down and when it came back, from periodic probes, so a
 * screen can say "bus DOWN since 12:03:04" and later "back since 12:04:10 (down 1m06s)"
 * instead of silently showing stale figures. Pure: probe results and times in.
 */

export interface BusStatus {
  connected: boolean;
  /** When the current outage began (null while connected). */
  down_since: number | null;
  /** When the bus last came back after an outage (null if it never was down). */
  back_at: number | null;
  /** How long the last finished outage lasted. */
  last_outage_ms: number | null;
}

export class BusWatch {
  private current: BusStatus = { connected: true, down_since: null, back_at: null, last_outage_ms: null };

  get status(): BusStatus {
    return { ...this.current };
  }

  /** Records one probe; returns 'down' or 'up' when the state changed, else null. */
  observe(connected: boolean, now: number): 'down' | 'up' | null {
    const was = this.current;
    if (connected === was.connected) return null;
    if (!connected) {
      this.current = { ...was, connected: false, down_since: now };
      return 'down';
    }
    this.current = { connected: true, down_since: null, back_at: now, last_outage_ms: now - (was.down_since ?? now) };
    return 'up';
  }
}
