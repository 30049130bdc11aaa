#!/usr/bin/env node
/**
 * `arrakis-ts install [--user | --sys-prefix | --prefix DIR] [--model DIR_OR_HUB_ID]`
 * `arrakis-ts uninstall [--user | --sys-prefix | --prefix DIR]`
 * `arrakis-ts kernel --connection-file FILE [--model M] [--log-level L]`   (what kernel.json runs)
 * `arrakis-ts --help | -h | help`, `arrakis-ts --version`
 */
import { checkModelSpec, install, kernelsDir, KERNEL_NAME, Location, sysPrefixWarning, uninstall } from "./kernelspec";
import { tuneHeap } from "./heap";
import { LOG_LEVEL_ENV, LOG_LEVELS } from "./log";
import { packageVersion } from "./paths";

const USAGE = `usage:
  arrakis-ts install   [--user | --sys-prefix | --prefix DIR] [--model DIR_OR_HUB_ID]
  arrakis-ts uninstall [--user | --sys-prefix | --prefix DIR]
  arrakis-ts kernel    --connection-file FILE [--model DIR_OR_HUB_ID] [--log-level LEVEL]
  arrakis-ts --help | --version

  --user        per-user Jupyter data dir (default)
  --sys-prefix  the active conda/virtualenv (share/jupyter/kernels under it)
  --prefix DIR  DIR/share/jupyter/kernels
  --model M     model the kernel preloads: a Hugging Face folder (with config.json), a Hub id
                ("name" or "org/name"), or "random" (default: the model embedded in the package;
                ARRAKIS_MODEL overrides it at run time)
  --log-level L kernel log detail on stderr: debug, info (default: one ready line), warn, error
                (also ARRAKIS_LOG_LEVEL)`;

interface Parsed {
  command: string;
  flags: Map<string, string | true>;
}

const VALUED = new Set(["--prefix", "--model", "--connection-file", "--log-level"]);
const BOOLEAN = new Set(["--user", "--sys-prefix", "--help", "-h", "--version"]);

function parse(argv: string[]): Parsed {
  // A leading flag (`arrakis-ts --help`, `--version`) is parsed as a flag, with no command.
  const [command = "", ...rest] = argv[0]?.startsWith("-") ? ["", ...argv] : argv;
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const [name, inline] = rest[i].split(/=(.*)/s, 2);
    if (VALUED.has(name)) {
      const value = inline ?? rest[++i];
      if (value === undefined || value === "") throw new Error(`${name} needs a value`);
      flags.set(name, value);
    } else if (BOOLEAN.has(name) && inline === undefined) {
      flags.set(name, true);
    } else {
      throw new Error(`unknown argument ${rest[i]}`);
    }
  }
  return { command, flags };
}

function location(flags: Map<string, string | true>): Location {
  const chosen = ["--user", "--sys-prefix", "--prefix"].filter((f) => flags.has(f));
  if (chosen.length > 1) throw new Error(`choose one of ${chosen.join(", ")}`);
  if (flags.has("--prefix")) return { kind: "prefix", dir: flags.get("--prefix") as string };
  if (flags.has("--sys-prefix")) return { kind: "sys-prefix" };
  return { kind: "user" };
}

async function main(argv: string[]): Promise<number> {
  const { command, flags } = parse(argv);
  if (flags.has("--version")) {
    console.log(`arrakis-ts ${packageVersion()}`);
    return 0;
  }
  if (flags.has("--help") || flags.has("-h") || command === "help") {
    console.log(USAGE);
    return 0;
  }
  if (!command) {
    console.error(USAGE);
    return 1;
  }
  switch (command) {
    case "install": {
      const loc = location(flags);
      // Without an active environment, --sys-prefix means a system folder Jupyter may not search.
      const refusal = loc.kind === "sys-prefix" ? sysPrefixWarning() : undefined;
      if (refusal) throw new Error(refusal);
      const model = checkModelSpec(flags.get("--model") as string | undefined);
      const dir = install(loc, model.value);
      console.log(`Installed the "${KERNEL_NAME}" kernelspec in ${dir}`);
      if (model.note) console.log(model.note);
      return 0;
    }
    case "uninstall": {
      const loc = location(flags);
      const dir = uninstall(loc);
      console.log(dir ? `Removed ${dir}` : `No "${KERNEL_NAME}" kernelspec in ${kernelsDir(loc)}`);
      return 0;
    }
    case "kernel": {
      const connectionFile = flags.get("--connection-file");
      if (typeof connectionFile !== "string") throw new Error("kernel needs --connection-file");
      const level = flags.get("--log-level");
      if (typeof level === "string") {
        if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new Error(`--log-level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(", ")}`);
        process.env[LOG_LEVEL_ENV] = level;
      }
      tuneHeap(); // before the launcher loads anything: the heap should not grow first
      const { startKernel } = await import("./launcher");
      await startKernel({ connectionFile, model: flags.get("--model") as string | undefined });
      return -1; // keep running
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    console.error(`arrakis-ts: ${(e as Error).message}`);
    process.exitCode = 2;
  },
);
