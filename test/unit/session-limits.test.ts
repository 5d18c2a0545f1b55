import { describe, expect, it } from "vitest";
import { defaultMaxSessions, SESSION_KIB } from "../../provider/ipsession";
import { checkLimits, LIMIT_VARIABLES, limit } from "../../provider/limits";

describe("ip session limits from the environment", () => {
  it("takes the default when the variable is unset or empty", () => {
    expect(limit("NSLAB_IP_X", 512, {})).toBe(512);
    expect(limit("NSLAB_IP_X", 512, { NSLAB_IP_X: "" })).toBe(512);
  });

  it("takes a positive whole number, spaces around it allowed", () => {
    expect(limit("NSLAB_IP_X", 512, { NSLAB_IP_X: "2" })).toBe(2);
    expect(limit("NSLAB_IP_X", 512, { NSLAB_IP_X: " 1500 " })).toBe(1500);
  });

  it.each(["0", "-1", "1.5", "1e3", "30s", "abc", "010"])("refuses %j, naming the variable and the default", (text) => {
    expect(() => limit("NSLAB_IP_X", 512, { NSLAB_IP_X: text })).toThrow(
      `NSLAB_IP_X must be a positive whole number (it is ${JSON.stringify(text)}); unset it for the default, 512`,
    );
  });

  it.each(LIMIT_VARIABLES)("checkLimits refuses %s set to anything but a positive whole number, and accepts it unset, empty or whole", (variable) => {
    expect(() => checkLimits({})).not.toThrow();
    expect(() => checkLimits({ [variable]: "" })).not.toThrow();
    expect(() => checkLimits({ [variable]: " 250 " })).not.toThrow();
    for (const text of ["0", "abc", "1.5", "30s"]) {
      expect(() => checkLimits({ [variable]: text })).toThrow(`${variable} must be a positive whole number (it is ${JSON.stringify(text)}); unset it for the default`);
    }
  });

  it("caps open sessions by default at 5 % of the available memory and a quarter of the open-file limit, between 64 and 4096", () => {
    const GiB = 2 ** 30;
    expect(defaultMaxSessions(24 * GiB, 1_048_576)).toBe(Math.floor((24 * GiB * 0.05) / (SESSION_KIB * 1024))); // 3700
    expect(defaultMaxSessions(8 * GiB, 1_048_576)).toBe(1233);
    expect(defaultMaxSessions(64 * GiB, 4096)).toBe(1024); // the open files are the limit
    expect(defaultMaxSessions(256 * 2 ** 20, 1_048_576)).toBe(64); // little memory: still 64
    expect(defaultMaxSessions(1024 * GiB, Number.MAX_SAFE_INTEGER)).toBe(4096);
  });
});
