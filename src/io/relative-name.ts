/**
 * Names read from files or arguments that someone else may have written (shard names in an index, revision
 * names, repository file names) become paths: a name like "../x" or "/etc/x" would reach outside the folder.
 */

/** A non-empty relative path with "/" separators and no empty, "." or ".." parts, no "\\" and no NUL. */
export function isPlainRelativeName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length > 0 &&
    !name.includes("\\") &&
    !name.includes("\0") &&
    name.split("/").every((p) => p !== "" && p !== "." && p !== "..")
  );
}
