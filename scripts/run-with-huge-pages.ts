/**
 * Runs a measuring script's `main` the way the kernel runs (its kernelspec sets glibc's huge-page tunable,
 * `HUGE_PAGES_ENV`). glibc reads `GLIBC_TUNABLES` once at process start, so on Linux without it the script runs
 * itself again with it set (processes it starts inherit it); `GLIBC_TUNABLES= …` measures without.
 */
import { spawnSync } from "node:child_process";
import { HUGE_PAGES_ENV } from "../src/engine/huge-pages";

export function runWithHugePages(main: () => Promise<void>): void {
  if (process.platform === "linux" && process.env.GLIBC_TUNABLES === undefined) {
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, ...HUGE_PAGES_ENV } });
    process.exit(r.status ?? 1);
  }
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
