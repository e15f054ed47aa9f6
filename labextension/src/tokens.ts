/**
 * The body of `GET {base_url}westtek/api/status`, as served by the
 * `westtek_server_ext` Jupyter server extension (`StatusReport.to_json`).
 */
export interface IStatusReport {
  /**
   * Version of the installed `westtek` distribution, e.g. `"0.1.0"`.
   */
  version: string;

  /**
   * Which West Tek component answered, e.g. `"server-extension"`.
   */
  component: string;

  /**
   * Wire names of the capabilities present on that server, sorted,
   * e.g. `["hub-service", "server-extension", "status"]`.
   */
  capabilities: string[];

  /**
   * Python version of the server's environment, e.g. `"3.11.7"`.
   */
  python: string;
}
