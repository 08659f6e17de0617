/**
 * The demo profile of `quantum up`: what the README's main command (demo source on, no
 * config file) runs with, so the demo keeps showing the whole loop working. Under the
 * SPEC defaults the demo's first losing round trip (quick round trips lose their fees)
 * starts the 60-minute cooldown and the twentieth entry ends the day, after which the
 * screen shows only rejections. The services themselves (`quantum risk` …), `up
 * --no-demo`, and any run with a config file keep the SPEC defaults.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Config overrides (dotted keys, as `loadConfig`'s overrides take them). */
export const DEMO_PROFILE: Readonly<Record<string, number>> = Object.freeze({
  // Long enough that a loss still visibly pauses entries (the screen shows COOLDOWN until
  // HH:MM), short enough that trading resumes within the minute.
  'risk.cooldown_minutes': 1,
  // About one entry a minute for a whole day, so the daily limit is not the demo's end.
  'risk.max_daily_entries': 1500,
});

/** One line for the screen and the log, so the profile is never a hidden setting. */
export function describeDemoProfile(): string {
  return (
    `demo profile: cooldown ${DEMO_PROFILE['risk.cooldown_minutes']} min, ` +
    `${DEMO_PROFILE['risk.max_daily_entries']} entries/day (a config file keeps the SPEC defaults: 60 min, 20/day)`
  );
}

/**
 * Whether a config file takes part, found as `loadConfig` finds it: --config, QT_CONFIG,
 * else ./quantum.config.json.
 */
export function usesConfigFile(configPath: string | undefined, env: Record<string, string | undefined>, cwd: string): boolean {
  return Boolean(configPath || env.QT_CONFIG) || existsSync(resolve(cwd, 'quantum.config.json'));
}

/** The overrides `quantum up` applies: the demo profile only with the demo source on and no config file. */
export function demoProfileFor(options: {
  demo: boolean;
  configPath?: string;
  env: Record<string, string | undefined>;
  cwd: string;
}): Readonly<Record<string, number>> | null {
  return options.demo && !usesConfigFile(options.configPath, options.env, options.cwd) ? DEMO_PROFILE : null;
}
