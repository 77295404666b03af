// Snowbird sprint board: keeps the board in step with /api/items.
(function () {
  "use strict";

  function card(item) {
    var li = document.createElement("li");
    li.className = "card";
    li.dataset.id = item.id;
    var points = document.createElement("span");
    points.className = "points";
    points.textContent = item.points;
    li.appendChild(points);
    li.appendChild(document.createTextNode(item.title));
    return li;
  }

  function render(items) {
    document.querySelectorAll(".column ul").forEach(function (ul) {
      ul.textContent = "";
    });
    items.forEach(function (item) {
      var ul = document.querySelector('.column[data-column="' + item.column + '"] ul');
      if (ul) {
        ul.appendChild(card(item));
      }
    });
  }

  function refresh() {
    return fetch("/api/items")
      .then(function (response) { return response.json(); })
      .then(function (body) { render(body.items); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.new-item");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var data = new FormData(form);
        fetch("/api/items", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            title: data.get("title"),
            points: Number(data.get("points") || 1)
          })
        }).then(function () {
          form.reset();
          return refresh();
        });
      });
    }
    setInterval(refresh, 30000);
  });
})();
