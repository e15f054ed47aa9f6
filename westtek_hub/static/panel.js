// The West Tek panel's buttons and forms: calls to the hub service's JSON API.
//
// Requests carry the OAuth cookie (same origin) and JupyterHub's XSRF token in the
// X-XSRFToken header (window.jhdata.xsrf_token, set by JupyterHub's page.html), without
// which the service refuses a cookie-authenticated request that changes state.
// Messages are shown with textContent, never as HTML.
"use strict";

(function () {
  const panel = document.getElementById("westtek-panel");
  if (!panel) {
    return;
  }
  const api = panel.dataset.api;

  function xsrfToken() {
    if (window.jhdata && window.jhdata.xsrf_token) {
      return window.jhdata.xsrf_token;
    }
    const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /** Call the API; resolve to its JSON, reject with its message. */
  async function request(method, path, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-XSRFToken": xsrfToken(), Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(api + path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.message) || `HTTP ${response.status}`);
    }
    return data;
  }

  /** Show a message; `busy` adds a spinner, `link` ({href, text}) a link after it. */
  function notify(message, kind, { busy = false, link = null } = {}) {
    const area = document.getElementById("westtek-status");
    area.className = `alert alert-${kind}`;
    area.replaceChildren();
    if (busy) {
      const spinner = document.createElement("span");
      spinner.className = "spinner-border spinner-border-sm me-2";
      spinner.setAttribute("aria-hidden", "true");
      area.append(spinner);
    }
    area.append(document.createTextNode(message));
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.className = "alert-link ms-2";
      anchor.textContent = link.text;
      area.append(anchor);
    }
    area.hidden = false;
    area.scrollIntoView({ block: "nearest" });
  }

  /** JupyterHub's own page following a server's start, with its progress bar. */
  function spawnProgress(user, serverName) {
    const hub = (window.jhdata && window.jhdata.base_url) || "/hub/";
    const name = serverName ? `/${encodeURIComponent(serverName)}` : "";
    return `${hub}spawn-pending/${encodeURIComponent(user)}${name}`;
  }

  const env = (data) => encodeURIComponent(data.environment);

  // What a researcher waits for while each long action runs.
  const working = {
    launch: (data) =>
      data.snapshot
        ? `Bringing snapshot ${data.snapshot.slice(0, 12)} over and asking the hub to start a server…`
        : "Asking the hub to start the server…",
    stop: () => "Stopping the server…",
    "take-over": (data) => `Asking for ${data.environment} to be taken over into your workspace…`,
    snapshot: (data) => `Asking ${data.environment}'s server for a snapshot…`,
    revoke: () => "Revoking the share and removing the copy…",
    "cancel-launch": () => "Cancelling the launch…",
    share: () => "Copying the snapshot into the other lab's store…",
    reassign: (values) =>
      `Handing the environment to ${values.to_researcher}: copying its snapshots into their ` +
      "lab's store where needed…",
    "auto-snapshots": (values) => `Saving lab ${values.lab}'s automatic-snapshot settings…`,
    "auto-snapshots-reset": (data) =>
      `Putting lab ${data.lab}'s automatic snapshots back to the defaults…`,
  };

  const autoSnapshotsSaved = (lab) =>
    `Lab ${lab}'s automatic-snapshot settings are saved: each of its servers uses them from ` +
    "its next start.";

  // A form field as JSON: blank is null (the default); what is not a number is sent as
  // typed, so the service's one-line refusal says what is wrong with it.
  const numberOrText = (text) => {
    const trimmed = text.trim();
    return trimmed === "" ? null : Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
  };
  const RETENTION_KEYS = ["keep_last", "keep_daily", "keep_weekly", "keep_monthly"];

  /** The settings of the automatic-snapshots form, as `PUT labs/{lab}/auto-snapshots` takes them. */
  function autoSnapshotSettings(values) {
    const filled = RETENTION_KEYS.filter((key) => values[key].trim() !== "");
    return {
      enabled: values.enabled === "" ? null : values.enabled === "true",
      settle_seconds: numberOrText(values.settle_seconds),
      interval_hours: numberOrText(values.interval_hours),
      retention: filled.length
        ? Object.fromEntries(filled.map((key) => [key, numberOrText(values[key])]))
        : null,
    };
  }

  // Each action returns the message shown when it succeeds (with an optional link to
  // follow); the page reloads after, unless there is a link to follow.
  const actions = {
    async launch(data) {
      const body = data.snapshot
        ? { snapshot_id: data.snapshot }
        : { environment_id: data.environment };
      const answer = await request("POST", "environments/jupyter", body);
      if (answer.waiting) {
        // a year on, the snapshot's data is in archive storage: the hub starts it later
        return (
          `Snapshot ${data.snapshot.slice(0, 12)} is in archive storage: ` +
          `${answer.waiting.waiting}. The hub starts ${answer.user}'s server by itself once ` +
          "it is back; this page lists the launch meanwhile."
        );
      }
      return {
        message:
          `The hub is starting ${answer.user}'s server` +
          (data.snapshot ? `, restored from snapshot ${data.snapshot.slice(0, 12)}.` : "."),
        link: { href: spawnProgress(answer.user, answer.server_name), text: "Follow its start" },
      };
    },
    async "take-over"(data) {
      const answer = await request("POST", "environments/take-over", {
        environment_id: data.environment,
      });
      if (!answer.job) {
        return {
          message:
            `The hub is starting your server: it brings ${answer.predecessor}'s work in ` +
            "before JupyterLab opens on its start page.",
          link: { href: spawnProgress(answer.user, answer.server_name), text: "Follow its start" },
        };
      }
      // (the start page waits for the take-over, which the server runs as a job)
      return {
        message: `Your server is bringing ${answer.predecessor}'s work into your workspace.`,
        link: { href: answer.open, text: "Open its start page" },
      };
    },
    async stop(data) {
      const answer = await request("DELETE", `environments/${env(data)}/server`);
      return `The hub is stopping ${answer.user}'s server.`;
    },
    async snapshot(data) {
      await request("POST", "environments/snapshot", { environment_id: data.environment });
      return `A snapshot of ${data.environment} is being taken.`;
    },
    async "auto-snapshots-reset"(data) {
      await request("PUT", `labs/${encodeURIComponent(data.lab)}/auto-snapshots`, {});
      return autoSnapshotsSaved(data.lab);
    },
    async "cancel-launch"(data) {
      const answer = await request("DELETE", `environments/launches/${data.launch}`);
      return `The launch from snapshot ${answer.snapshot_id.slice(0, 12)} is cancelled.`;
    },
    async revoke(data) {
      const answer = await request("DELETE", `collaboration/share/${data.share}`);
      return `Lab ${answer.to_lab} no longer has snapshot ${answer.snapshot_id.slice(0, 12)}.`;
    },
  };

  const forms = {
    async share(values) {
      const answer = await request("POST", "collaboration/share", values);
      return `Snapshot ${answer.snapshot_id.slice(0, 12)} is shared with lab ${answer.to_lab} ` +
        `(${answer.permission}).`;
    },
    async reassign(values) {
      const answer = await request("POST", "knowledge/transfer", values);
      return `${answer.name} now belongs to ${answer.researcher_id} (lab ${answer.lab_id}).`;
    },
    async "auto-snapshots"(values) {
      const path = `labs/${encodeURIComponent(values.lab)}/auto-snapshots`;
      const answer = await request("PUT", path, autoSnapshotSettings(values));
      return autoSnapshotsSaved(answer.lab_id);
    },
  };

  async function perform(control, waiting, work) {
    if (control.dataset.confirm && !window.confirm(control.dataset.confirm)) {
      return;
    }
    control.disabled = true;
    notify(waiting, "info", { busy: true });
    try {
      const done = await work();
      const { message, link } = typeof done === "string" ? { message: done, link: null } : done;
      notify(message, "success", { link });
      if (!link) {
        window.setTimeout(() => window.location.reload(), 1200);
      }
    } catch (error) {
      notify(error.message, "danger");
      control.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-westtek-action]");
    const action = button && button.dataset.westtekAction;
    if (action && actions[action]) {
      perform(button, working[action](button.dataset), () => actions[action](button.dataset));
    }
  });

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-westtek-form]");
    if (!form || !forms[form.dataset.westtekForm]) {
      return;
    }
    event.preventDefault();
    // a number field holding text reads as blank, which would save the default unasked
    const notNumber = [...form.querySelectorAll("input[type=number]")].find(
      (input) => input.validity.badInput,
    );
    if (notNumber) {
      const label = form.querySelector(`label[for="${notNumber.id}"]`);
      notify(`${label ? label.textContent.trim() : notNumber.name}: not a number`, "danger");
      notNumber.focus();
      return;
    }
    const values = Object.fromEntries(new FormData(form).entries());
    const submit = form.querySelector("[type=submit]");
    perform(submit, working[form.dataset.westtekForm](values), async () => {
      const message = await forms[form.dataset.westtekForm](values);
      const dialog = form.closest(".modal");
      if (dialog && window.bootstrap) {
        window.bootstrap.Modal.getOrCreateInstance(dialog).hide();
      }
      return message;
    });
  });

  // A number out of its field's bounds is marked as it is typed; Save says why (the service).
  document.addEventListener("input", (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === "number") {
      input.classList.toggle("is-invalid", !input.checkValidity());
    }
  });

  // The share dialog takes its snapshot from the button that opened it.
  document.addEventListener("show.bs.modal", (event) => {
    const opener = event.relatedTarget;
    const field = event.target.querySelector("[name=snapshot_id]");
    if (opener && field && opener.dataset.snapshot) {
      field.value = opener.dataset.snapshot;
    }
  });
})();
