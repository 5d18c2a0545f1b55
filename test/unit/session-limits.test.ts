import { describe, expect, it } from "vitest";
import { limit } from "../../provider/ipsession";

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
});
