// The fer_app page: upload a photo or stream the webcam to POST /api/detect,
// then draw each face's box, top emotion and probability bars on the canvas
// and list the faces in #detections. No libraries, no external requests.
"use strict";

const COLORS = {  // same colours as fer_app/recognition/draw.py
  angry: "rgb(230,60,50)", disgust: "rgb(120,170,40)", fear: "rgb(150,90,200)",
  happy: "rgb(250,200,30)", sad: "rgb(60,120,230)", surprise: "rgb(250,130,40)",
  neutral: "rgb(170,170,170)",
};
const SEND_INTERVAL_MS = 150;   // camera: at most ~6 frames per second to the server
const CAMERA_WIDTH = 640;       // camera frames are sent at this width

const view = document.getElementById("view");
const context = view.getContext("2d");
const list = document.getElementById("detections");
const statusLine = document.getElementById("status");
const cameraButton = document.getElementById("camera-button");
const video = document.getElementById("camera");

const camera = { stream: null, faces: [], scale: 1, sent: 0, started: 0 };

function colorOf(emotion) { return COLORS[emotion] || "rgb(0,200,200)"; }

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

async function detect(blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  const response = await fetch("/api/detect", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;  // {faces: [{box, emotion, score, probabilities}], width, height, seconds}
}

// --- drawing -------------------------------------------------------------
function drawFaces(faces, scale) {
  for (const face of faces) {
    const [x, y, w, h] = face.box.map((v) => v * scale);
    const color = colorOf(face.emotion);
    context.lineWidth = Math.max(2, w / 60);
    context.strokeStyle = color;
    context.strokeRect(x, y, w, h);
    const label = `${face.emotion} ${face.score.toFixed(2)}`;
    context.font = "14px system-ui, sans-serif";
    const labelWidth = context.measureText(label).width + 8;
    const top = Math.max(0, y - 20);
    context.fillStyle = color;
    context.fillRect(x, top, labelWidth, 20);
    context.fillStyle = "black";
    context.fillText(label, x + 4, top + 15);
    const barsHeight = Object.keys(face.probabilities).length * 11 + 4;
    drawBars(face.probabilities, x, Math.min(y + h + 4, view.height - barsHeight));
  }
}

function drawBars(probabilities, x, y) {
  const names = Object.keys(probabilities);
  context.fillStyle = "rgba(0,0,0,0.6)";
  context.fillRect(x, y, 130, names.length * 11 + 4);
  context.font = "10px system-ui, sans-serif";
  names.forEach((name, row) => {
    const top = y + 2 + row * 11;
    context.fillStyle = "white";
    context.fillText(name.slice(0, 8), x + 3, top + 9);
    context.fillStyle = colorOf(name);
    context.fillRect(x + 56, top + 2, Math.max(1, probabilities[name] * 70), 7);
  });
}

function listFaces(faces) {
  list.replaceChildren(...faces.map((face) => {
    const item = document.createElement("li");
    item.className = "detection";
    item.dataset.emotion = face.emotion;
    item.dataset.box = face.box.join(",");
    item.innerHTML = `<span class="emotion"></span> <span class="score"></span>
      <div class="box"></div><div class="bars"></div>`;
    item.querySelector(".emotion").textContent = face.emotion;
    item.querySelector(".score").textContent = face.score.toFixed(2);
    item.querySelector(".box").textContent = `box x=${face.box[0]} y=${face.box[1]} ` +
      `w=${face.box[2]} h=${face.box[3]}`;
    const bars = item.querySelector(".bars");
    for (const [name, p] of Object.entries(face.probabilities)) {
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.round(p * 100)}%`;
      bar.style.background = colorOf(name);
      const value = document.createElement("span");
      value.textContent = p.toFixed(2);
      bars.append(label, bar, value);
    }
    return item;
  }));
}

// --- photo upload --------------------------------------------------------
async function showPhoto(file) {
  stopCamera();
  setStatus(`analysing ${file.name} ...`);
  try {
    const result = await detect(file, file.name);
    const picture = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, 960 / result.width);
    view.width = Math.round(result.width * scale);
    view.height = Math.round(result.height * scale);
    context.drawImage(picture, 0, 0, view.width, view.height);
    drawFaces(result.faces, scale);
    listFaces(result.faces);
    setStatus(`${file.name}: ${result.faces.length} face(s) in ${(result.seconds * 1000).toFixed(0)} ms`);
  } catch (error) {
    listFaces([]);
    setStatus(`error: ${error.message}`, true);
  }
}

// --- live camera ---------------------------------------------------------
async function startCamera() {
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (error) {
    setStatus(`camera not available: ${error.message}`, true);
    return;
  }
  video.srcObject = camera.stream;
  await video.play();
  view.width = video.videoWidth;
  view.height = video.videoHeight;
  camera.sent = 0;
  camera.started = performance.now();
  cameraButton.textContent = "Stop camera";
  requestAnimationFrame(drawCameraFrame);
  sendCameraFrames();
}

function stopCamera() {
  if (!camera.stream) return;
  camera.stream.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  camera.faces = [];
  cameraButton.textContent = "Start camera";
  setStatus("camera stopped");
}

function drawCameraFrame() {
  if (!camera.stream) return;
  context.drawImage(video, 0, 0, view.width, view.height);
  drawFaces(camera.faces, camera.scale);
  requestAnimationFrame(drawCameraFrame);
}

async function sendCameraFrames() {
  const frame = document.createElement("canvas");
  while (camera.stream) {
    const began = performance.now();
    const scale = Math.min(1, CAMERA_WIDTH / video.videoWidth);
    frame.width = Math.round(video.videoWidth * scale);
    frame.height = Math.round(video.videoHeight * scale);
    frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const result = await detect(blob, "camera.jpg");
      if (!camera.stream) break;
      camera.faces = result.faces;
      camera.scale = view.width / result.width;
      camera.sent += 1;
      listFaces(result.faces);
      const rate = camera.sent / ((performance.now() - camera.started) / 1000);
      setStatus(`live: ${result.faces.length} face(s), ${rate.toFixed(1)} updates/s ` +
        `(${camera.sent} frames)`);
    } catch (error) {
      setStatus(`error: ${error.message}`, true);
    }
    const wait = SEND_INTERVAL_MS - (performance.now() - began);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

// --- wiring --------------------------------------------------------------
document.getElementById("file-input").addEventListener("change", (event) => {
  if (event.target.files.length) showPhoto(event.target.files[0]);
});
cameraButton.addEventListener("click", () => (camera.stream ? stopCamera() : startCamera()));
fetch("/api/health").then((response) => response.json()).then((health) => {
  document.getElementById("model-name").textContent =
    `${health.model} (${health.classes.join(", ")})`;
}).catch(() => setStatus("server not reachable", true));
