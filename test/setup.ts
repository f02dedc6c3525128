import { beforeEach, expect } from "vitest";

// Every test must assert something: a test that cannot fail proves nothing.
beforeEach(() => {
  expect.hasAssertions();
});
