import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    // Kernel and engine operations take seconds; a whole Pulumi lifecycle takes tens.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Two cores: e2e files each start the engine, more workers only thrash.
    maxWorkers: 2,
    pool: "forks",
    reporters: ["default"],
  },
});
