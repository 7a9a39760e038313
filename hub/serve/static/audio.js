// Recording from the microphone: MediaRecorder's blob decoded with WebAudio and written as a 16-bit WAV file,
// a format the hub reads whatever the browser records in (webm and mp4 are not among them).

export function canRecord() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder &&
                 (window.AudioContext || window.webkitAudioContext));
}

// Start recording; the returned function stops it and resolves to a WAV Blob.
export async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const parts = [];
  recorder.ondataavailable = (event) => { if (event.data.size) parts.push(event.data); };
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  return async function stop() {
    recorder.stop();
    await stopped;
    stream.getTracks().forEach((track) => track.stop());
    return toWav(new Blob(parts, { type: recorder.mimeType }));
  };
}

// Any audio the browser decodes, as a mono 16-bit PCM WAV Blob at its own sample rate.
export async function toWav(blob) {
  const Context = window.AudioContext || window.webkitAudioContext;
  const context = new Context();
  try {
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    return new Blob([wavBytes(mono(decoded), decoded.sampleRate)], { type: "audio/wav" });
  } finally {
    context.close();
  }
}

function mono(buffer) {
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += channel[i] / buffer.numberOfChannels;
  }
  return out;
}

export function wavBytes(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);          // size of the fmt chunk
  view.setUint16(20, 1, true);           // PCM
  view.setUint16(22, 1, true);           // one channel
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);    // bytes per second
  view.setUint16(32, 2, true);           // bytes per frame
  view.setUint16(34, 16, true);          // bits per sample
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return view.buffer;
}
