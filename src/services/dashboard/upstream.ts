/**
 * The dashboard's view of the three services over HTTP: their /health, the figures
 * the bus does not carry (risk and execution /stats, the monitor's live /portfolio and
 * /positions), and the close proxy. Addresses come from config (`host`, `ports`).
 */
import type { ServiceName } from '../../bus/topics.js';
import type { Config } from '../../platform/config.js';

export const SERVICE_NAMES: readonly ServiceName[] = ['risk', 'execution', 'monitor'];

export interface UpstreamResponse {
  status: number;
  body: unknown;
}

/** What the hub and the routes need from the services; tests may pass their own. */
export interface Upstream {
  /** The base URL of a service, e.g. http://127.0.0.1:8003. */
  baseUrl(service: ServiceName): string;
  /** GET; throws when the service cannot be reached or does not answer in time. */
  get(service: ServiceName, path: string, timeoutMs?: number): Promise<UpstreamResponse>;
  /** POST (with the api_token when one is configured); throws like get. */
  post(service: ServiceName, path: string, body?: unknown, timeoutMs?: number): Promise<UpstreamResponse>;
}

/** How a dashboard process reaches the services: a wildcard bind address is reached on loopback. */
export function serviceHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  if (host.includes(':') && !host.startsWith('[')) return `[${host}]`;
  return host;
}

export const DEFAULT_GET_TIMEOUT_MS = 1500;
/** The monitor waits up to 5 s for a close's fill; the proxy gives it a little more. */
export const CLOSE_TIMEOUT_MS = 8000;

export function httpUpstream(config: Config): Upstream {
  const host = serviceHost(config.host);
  const baseUrl = (service: ServiceName) => `http://${host}:${config.ports[service]}`;
  const call = async (method: 'GET' | 'POST', service: ServiceName, path: string, body: unknown, timeoutMs: number) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (method === 'POST') {
      headers['content-type'] = 'application/json';
      if (config.api_token) headers.authorization = `Bearer ${config.api_token}`;
    }
    const response = await fetch(`${baseUrl(service)}${path}`, {
      method,
      headers,
      ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: passed on as text
    }
    return { status: response.status, body: parsed };
  };
  return {
    baseUrl,
    get: (service, path, timeoutMs = DEFAULT_GET_TIMEOUT_MS) => call('GET', service, path, undefined, timeoutMs),
    post: (service, path, body, timeoutMs = CLOSE_TIMEOUT_MS) => call('POST', service, path, body, timeoutMs),
  };
}

/** Why a request did not get an answer, in words for the page. */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'no answer in time';
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return 'connection refused';
    if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
    return error.message;
  }
  return String(error);
}
