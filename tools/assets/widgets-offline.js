/* Set-up for the Jupyter widget manager on the book's widget pages, served from the build.
 *
 * `nb_ipywidgets_js` in _config.yml loads this file first, then require.js, then the manager
 * (@jupyter-widgets/html-manager 1.0, `embed-amd.js`); tools/fetch_assets.py copies all three
 * into _static/vendor/. It does two things:
 *
 * 1. Tells require.js where the manager lives. The manager's webpack bundle loads its icon
 *    fonts from the folder of its AMD module, which require.js would otherwise resolve against
 *    the page's own folder (404s for every font). A global `require` object defined before
 *    require.js loads is its configuration.
 * 2. Lets the widgets typeset with MathJax 3. The manager typesets labels with the MathJax 2 call
 *    `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, which throws a TypeError under the
 *    MathJax 3 that the book loads. `MathJax.Hub.Queue` is mapped onto MathJax 3's
 *    `typesetPromise`; the `$...$` and `$$...$$` that widget labels use (MathJax 3 only knows
 *    `\(...\)` and `\[...\]` here) are rewritten in that element alone, not in the page.
 */
(function () {
  "use strict";

  var here = document.currentScript && document.currentScript.src;
  if (here && window.require === undefined) {
    window.require = {
      paths: { "@jupyter-widgets/html-manager/dist": new URL("html-manager", here).href },
    };
  }

  function dollarsToDelimiters(element) {
    var walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeValue.indexOf("$") >= 0) {
        node.nodeValue = node.nodeValue
          .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
          .replace(/\$([^$]+)\$/g, "\\($1\\)");
      }
    }
  }

  function install() {
    var mathjax = window.MathJax;
    if (!mathjax || !mathjax.version || mathjax.version.split(".")[0] !== "3" || mathjax.Hub) {
      return;
    }
    var queue = (mathjax.startup && mathjax.startup.promise) || Promise.resolve();

    function typeset(element) {
      queue = queue
        .then(function () {
          if (element) {
            dollarsToDelimiters(element);
          }
          return mathjax.typesetPromise(element ? [element] : undefined);
        })
        .catch(function (error) {
          console.error("MathJax could not typeset a widget:", error);
        });
    }

    mathjax.Hub = {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset") {
            typeset(job[2]);
          }
        }
        return queue;
      },
    };
  }

  // MathJax is loaded with `defer`: its global exists once the document has been parsed, and
  // the widget manager renders only after the `load` event.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install);
  } else {
    install();
  }
})();
