// The verification page's QR scanner: the browser's own BarcodeDetector (Shape Detection API) on camera frames,
// where the browser has it; the decoded text fills the paste field. Nothing leaves the page.
(function () {
  "use strict";
  var button = document.getElementById("scan");
  var video = document.getElementById("camera");
  var field = document.getElementById("text");
  var status = document.getElementById("scan-status");
  var unsupported = document.getElementById("scan-unsupported");
  var form = document.getElementById("verify");
  if (!button || !video || !field || !form) { return; }
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    form.dataset.scanner = "unsupported";  // the paste field remains
    return;
  }
  unsupported.hidden = true;
  button.hidden = false;
  form.dataset.scanner = "ready";
  var stream = null;

  function stop() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.hidden = true;
  }

  button.addEventListener("click", function () {
    var detector;
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch (error) {
      status.textContent = "Không quét được mã QR trên trình duyệt này. (QR scanning is not available.)";
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        status.textContent = "Đưa mã QR vào khung hình… (Hold the QR code in view…)";
        return video.play().then(function () { scan(detector); });
      })
      .catch(function () {
        status.textContent = "Không mở được camera. (The camera could not be opened.)";
        stop();
      });
  });

  function scan(detector) {
    if (!stream) { return; }
    detector.detect(video).then(function (codes) {
      var found = codes.find(function (code) { return code.rawValue; });
      if (found) {
        field.value = found.rawValue;
        status.textContent = "Đã đọc mã QR; bấm Xác minh. (QR read; press Verify.)";
        stop();
        return;
      }
      window.setTimeout(function () { scan(detector); }, 200);
    }).catch(function () { window.setTimeout(function () { scan(detector); }, 400); });
  }
})();
