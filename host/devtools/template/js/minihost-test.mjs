// Runs this app's built component in Minihost's simulator, without a server, for `npm test`:
// each call of `simulate` is one `minihost app run --json` (a throwaway messenger built from the
// server's own code: the manifest's commands, scopes and limits, the platform's budgets and
// checks), and returns what happened for assertions.
//
// The `minihost` binary is found on PATH, or named by MINIHOST_BIN.
// Written by `minihost app new`; the same file for every app of this minihost version.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * @typedef {object} Scenario
 * @property {string} [command] A slash command, e.g. '/echo hi'.
 * @property {boolean} [opened] The user opens the app's panel (instead of a command).
 * @property {string} [action] Then press this button on the card the app answered with.
 * @property {Record<string, string>} [inputs] The card's input values for the press.
 * @property {string[]} [grants] The scopes the simulated user grants.
 * @property {string} [wasm] The component (default dist/app.wasm).
 * @property {string} [manifest] The manifest (default miniapp.toml).
 */

/**
 * @typedef {object} Outcome
 * @property {'ok' | 'failed' | 'refused'} status ok; the app failed (see `error`); or a server
 *   would refuse the app or the scenario (see `refusal`).
 * @property {any[]} runs One report per event: outcome ({ok: content|null} or {error: {kind,
 *   message}}), calls (interface, function, outcome), logs (level, message), fuel, duration_us.
 * @property {any[]} messages What the conversation holds from the app (id, content).
 * @property {any[]} payments The payment requests the app made.
 * @property {any} reply The last run's reply content, or null.
 * @property {string} [error] Why the app failed.
 * @property {string} [refusal] Why a server would refuse.
 */

/**
 * Runs one scenario in the simulator.
 * @param {Scenario} scenario
 * @returns {Outcome}
 */
export function simulate(scenario) {
  const wasm = scenario.wasm ?? 'dist/app.wasm';
  if (!existsSync(wasm)) {
    throw new Error(`${wasm} is missing: build the app first (npm run build)`);
  }
  const args = ['app', 'run', wasm, '--json', '--manifest', scenario.manifest ?? 'miniapp.toml'];
  if (scenario.command !== undefined) args.push('--command', scenario.command);
  if (scenario.opened) args.push('--opened');
  if (scenario.action !== undefined) args.push('--action', scenario.action);
  for (const [id, value] of Object.entries(scenario.inputs ?? {})) {
    args.push('--input', `${id}=${value}`);
  }
  for (const scope of scenario.grants ?? []) args.push('--grant', scope);
  const bin = process.env.MINIHOST_BIN ?? 'minihost';
  const run = spawnSync(bin, args, { encoding: 'utf8' });
  if (run.error) {
    throw new Error(`could not run ${bin} (put minihost on PATH or set MINIHOST_BIN): ${run.error.message}`);
  }
  const stderr = run.stderr.trim();
  if (run.status === 2) {
    return { status: 'refused', runs: [], messages: [], payments: [], reply: null, refusal: stderr };
  }
  let report;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    throw new Error(`minihost app run exited ${run.status} without a report: ${stderr}`);
  }
  const last = report.runs[report.runs.length - 1];
  return {
    status: run.status === 0 ? 'ok' : 'failed',
    runs: report.runs,
    messages: report.messages,
    payments: report.payments,
    reply: last?.outcome?.ok ?? null,
    ...(run.status === 0 ? {} : { error: stderr }),
  };
}
