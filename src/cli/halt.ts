/**
 * `quantum halt [--flatten] [--reason TEXT]` and `quantum resume` (docs/protections.md):
 * the kill switch from the command line, a POST to the risk service of the deployment in
 * the config (its host and ports.risk, with the api_token when one is set).
 */
import type { Config } from '../platform/config.js';

/** Where the risk service answers: its configured host (a wildcard address means this machine). */
export function riskUrl(config: Config): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.ports.risk}`;
}

async function post(config: Config, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.api_token !== undefined) headers.authorization = `Bearer ${config.api_token}`;
  const url = `${riskUrl(config)}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(`the risk service at ${riskUrl(config)} did not answer (${(err as Error).message}): is it running?`);
  }
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { message: text };
  }
  return { status: response.status, json };
}

function failed(what: string, status: number, json: Record<string, unknown>): number {
  console.error(`quantum ${what}: the risk service answered ${status}: ${String(json.message ?? json.error ?? '')}`);
  return 1;
}

export async function runHalt(config: Config, options: { flatten: boolean; reason?: string; json: boolean }): Promise<number> {
  const body: Record<string, unknown> = { flatten: options.flatten };
  if (options.reason !== undefined) body.reason = options.reason;
  const { status, json } = await post(config, '/halt', body);
  if (status !== 200) return failed('halt', status, json);
  if (options.json) {
    console.log(JSON.stringify(json, null, 2));
    return 0;
  }
  const halt = json.kill_switch as { reason: string; since: number };
  console.log(`HALTED: entries are refused KILL_SWITCH (${halt.reason}) since ${new Date(halt.since).toISOString()}; closes still pass.`);
  if (options.flatten) {
    const closes = (json.closes as Array<{ symbol: string; side: string; quantity: number }>) ?? [];
    if (closes.length === 0) console.log('Flatten: no open position to close.');
    for (const c of closes) console.log(`Flatten: ${c.side} ${c.quantity} ${c.symbol} (reduce-only close published)`);
  }
  console.log('Leave with: quantum resume');
  return 0;
}

export async function runResume(config: Config, options: { json: boolean }): Promise<number> {
  const { status, json } = await post(config, '/resume', {});
  if (status !== 200) return failed('resume', status, json);
  if (options.json) console.log(JSON.stringify(json, null, 2));
  else console.log(`trading ${String(json.trading_state)}: entries pass the risk rules again (peak equity restarts at current equity).`);
  return 0;
}
