// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Turn a granted home device on or off, toggle it, or set its level, through a granted Home Assistant provider. Lights, switches, fans and climate devices are supported: on, off and toggle call the domain's turn_on, turn_off and toggle services; set is a light's brightness in percent (0 to 100), a fan's speed in percent (0 to 100) or a climate device's target temperature in its own unit, within the device's range. The device must exist, and the state it reports after the call is the result; the provider's token is injected by the broker and never reaches the caller.
 */
export interface HomeDeviceInvokeInput {
  /**
   * The device's Home Assistant entity id, such as light.kitchen, matched exactly against the grant's 'device' nodes
   */
  device_id: string;
  /**
   * What to do; the grant names the actions allowed on each device
   */
  action: "on" | "off" | "toggle" | "set";
  /**
   * For set, and only for set: brightness or fan speed in percent, or a target temperature
   */
  value?: number;
  /**
   * Which of the grant's providers to go through (default: the first one the grant names)
   */
  provider?: string;
}

export interface HomeDeviceInvokeResult {
  /**
   * The device acted on
   */
  device_id: string;
  /**
   * The state the device reports after the call, such as on, off or heat
   */
  new_state: string;
  /**
   * After set: the brightness or speed in percent, or the target temperature, that the device reports
   */
  value?: number;
  /**
   * When the provider acknowledged the service call, ISO 8601 in UTC
   */
  acknowledged_at: string;
}
