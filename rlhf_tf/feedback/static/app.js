(function () {
  var form = document.getElementById("answer-form");
  function submit(value) {
    if (!form) { return; }
    var button = form.querySelector('button[value="' + value + '"]');
    if (button) { button.click(); }
  }
  document.addEventListener("keydown", function (event) {
    if (event.target && (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA")) {
      if (event.key === "Enter" && form && form.dataset.kind === "ranking") { submit("ranking"); }
      return;
    }
    var kind = form ? form.dataset.kind : "";
    var key = event.key;
    if (key === "u") { document.querySelector("#undo-form button").click(); return; }
    if (key === "s") { submit("skip"); return; }
    if (kind === "comparison" || kind === "segment_comparison" || kind === "slate_comparison") {
      if (key === "1" || key === "ArrowLeft") { submit("left"); }
      else if (key === "2" || key === "ArrowRight") { submit("right"); }
      else if (key === "t" || key === "=") { submit("tie"); }
    } else if (kind === "rating" && key >= "1" && key <= "7") {
      submit("score-" + key);
    } else if (kind === "ranking" && key === "Enter") {
      submit("ranking");
    }
  });
})();
