// Set by scripts/sanitize.mjs when the host and pump under test are ASan or TSan builds.

/** 'address' or 'thread' under `npm run sanitize`, else undefined. */
export const SANITIZER = process.env.SKILLPLUG_TEST_SANITIZER || undefined;

/** A skip reason for tests that need the host's RLIMIT_AS, which sanitizer builds cannot run under. */
export const NEEDS_ADDRESS_LIMIT = SANITIZER ? `the ${SANITIZER} sanitizer reserves terabytes of shadow address space, so its host build runs without RLIMIT_AS` : false;
