// code_wake web view: small conveniences only; every page works without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.filters")) {
    const range = form.querySelectorAll("input[name=since], input[name=until]");
    for (const select of form.querySelectorAll("select.auto")) {
      select.addEventListener("change", () => {
        if (select.name === "window") {
          if (select.value === "custom") {
            const details = form.querySelector("details.range");
            if (details) {
              details.open = true;
              range[0]?.focus();
            }
            return;
          }
          // A preset window replaces since/until.
          for (const input of range) input.value = "";
        }
        if (select.name === "app") {
          // Versions belong to their app: a new app starts from all its versions.
          const vsn = form.querySelector("select[name=vsn]");
          if (vsn) vsn.value = "";
        }
        form.requestSubmit();
      });
    }
    // Empty fields would only lengthen the link: leave them out of it.
    form.addEventListener("submit", () => {
      for (const field of form.querySelectorAll("input, select")) {
        if (field.name && field.value === "" && field.type !== "checkbox") field.disabled = true;
      }
    });
  }
});
