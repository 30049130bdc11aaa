/**
 * Huge pages for large allocations on Linux. glibc's malloc (which backs every ArrayBuffer and onnxruntime's
 * buffers) marks its big blocks for transparent huge pages under `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, which
 * matters where the kernel's policy is `madvise` (the common default). First touch of fresh memory is most of
 * what random init and a model's first run cost at the billion-parameter scale, and with 2 MiB pages it is one
 * fault per 512 of 4 KiB (on a virtual machine, a fault in the guest and one in the host): the CPU time to build
 * and first run a 1.24 B-parameter model halves. glibc reads the variable once at process start, so it is set
 * where a process is launched (the kernelspec, the scale benchmark); other systems ignore it. A leaf module.
 */
import * as fs from "node:fs";

export const HUGE_PAGES_ENV = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" } as const;

/** The kernel's transparent-huge-page policy ("always", "madvise", "never"), or "unknown". */
export function hugePagePolicy(): string {
  try {
    return /\[(\w+)\]/.exec(fs.readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown"; // a kernel without transparent huge pages, or no /sys
  }
}

/** Whether this process allocates large blocks in huge pages, and why (for reports). */
export function hugePagesState(env: NodeJS.ProcessEnv = process.env, policy = hugePagePolicy(), platform: string = process.platform): string {
  if (platform !== "linux") return "not Linux";
  if (policy === "always") return "on (kernel policy always)";
  const tunable = (env.GLIBC_TUNABLES ?? "").split(":").includes(HUGE_PAGES_ENV.GLIBC_TUNABLES);
  if (policy === "madvise") return tunable ? `on (${HUGE_PAGES_ENV.GLIBC_TUNABLES}, kernel policy madvise)` : `off (kernel policy madvise; start Node with GLIBC_TUNABLES=${HUGE_PAGES_ENV.GLIBC_TUNABLES})`;
  return `off (kernel policy ${policy})`;
}
