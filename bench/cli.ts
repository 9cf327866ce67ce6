/** Runs a bench's main: exit 0 when it resolves, print the error and exit 1 when it fails. */
export function runCli(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
