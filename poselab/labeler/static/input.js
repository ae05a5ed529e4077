// Keyboard and pointer input -> App actions.
//
// Pointer: a press-release that moves less than CLICK_SLOP screen px is a click (it places the
// active bodypart at the PRESS position and never pans). A larger move pans, unless the press
// was on a marker: then it drags that marker only (on a hollow prediction: it drags a copy
// that becomes the bodypart's label where it is dropped). Right/middle button or Space+drag
// always pan; the wheel zooms about the cursor.
//
// Adding a key: a case in onKey (keep napari-deeplabcut's key where it has one) and a row in
// index.html's help table.

import { MODES } from './actions.js';

const CLICK_SLOP = 4;
const $ = (id) => document.getElementById(id);

export function bindInput(app) {
  const canvas = $('overlay-canvas');
  const view = app.view;
  let gesture = null;
  let spaceDown = false;

  canvas.addEventListener('contextmenu', (e) => e.preventDefault());

  canvas.addEventListener('pointerdown', (e) => {
    if (gesture) return;
    // A toolbar control that kept the focus would swallow the next keys.
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
    canvas.setPointerCapture(e.pointerId);
    const [sx, sy] = view.clientToStage(e.clientX, e.clientY);
    const panOnly = e.button !== 0 || spaceDown;
    gesture = {
      id: e.pointerId,
      sx,
      sy,
      ox: view.ox,
      oy: view.oy,
      panOnly,
      hit: panOnly ? null : app.grabAt(sx, sy, e.shiftKey), // a marker, prediction or animal
      image: view.toImage(sx, sy), // where a click places: the press position
      moved: false,
    };
    e.preventDefault();
  });

  canvas.addEventListener('pointermove', (e) => {
    const [sx, sy] = view.clientToStage(e.clientX, e.clientY);
    if (!gesture || e.pointerId !== gesture.id) {
      app.hoverAt(sx, sy);
      return;
    }
    const dx = sx - gesture.sx;
    const dy = sy - gesture.sy;
    if (!gesture.moved && Math.hypot(dx, dy) >= CLICK_SLOP) {
      gesture.moved = true; // sticky: coming back within the slop does not make it a click
      if (gesture.hit) app.beginDrag(gesture.hit, gesture.image);
      else canvas.classList.add('panning');
    }
    if (!gesture.moved) return;
    if (gesture.hit) app.dragTo(view.toImage(sx, sy));
    else view.panTo(gesture.ox + dx, gesture.oy + dy); // the image follows the pointer exactly
    app.hoverAt(sx, sy);
  });

  const finish = (e, cancelled) => {
    if (!gesture || e.pointerId !== gesture.id) return;
    const g = gesture;
    gesture = null;
    canvas.classList.remove('panning');
    if (g.moved && g.hit) app.endDrag(!cancelled);
    else if (!g.moved && !g.panOnly && !cancelled) app.place(...g.image);
  };
  canvas.addEventListener('pointerup', (e) => finish(e, false));
  canvas.addEventListener('pointercancel', (e) => finish(e, true));
  canvas.addEventListener('pointerleave', () => {
    if (!gesture) app.hoverAt(null, null);
  });

  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    let [sx, sy] = view.clientToStage(e.clientX, e.clientY);
    // WheelEvent coordinates are whole pixels; the last pointermove has the exact position.
    const p = app.pointer;
    if (p && Math.abs(p[0] - sx) <= 1 && Math.abs(p[1] - sy) <= 1) [sx, sy] = p;
    const unit = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 400 : 1; // lines, pages -> px
    view.zoomAt(Math.exp(-e.deltaY * unit * 0.0015), sx, sy);
  }, { passive: false });

  window.addEventListener('keydown', (e) => onKey(app, e, (v) => { spaceDown = v; }));
  window.addEventListener('keyup', (e) => {
    if (e.key === ' ') spaceDown = false;
  });
  window.addEventListener('blur', () => {
    spaceDown = false;
  });

  // Toolbar controls; blur after use so Space and arrows go back to the labeler.
  const mode = $('mode');
  mode.addEventListener('change', () => {
    app.setMode(mode.value);
    mode.blur();
  });
  const filter = () => app.setDisplay(Number($('brightness').value), Number($('contrast').value));
  $('brightness').addEventListener('input', filter);
  $('contrast').addEventListener('input', filter);
  $('marker-size').addEventListener('input', () => setMarkerSize(app, Number($('marker-size').value)));
  $('show-names').addEventListener('change', () => toggleNames(app, $('show-names').checked));
  $('show-trails').addEventListener('change', () => toggleTrails(app, $('show-trails').checked));
  // A control keeps the focus after a click; the keys must still reach the labeler.
  for (const id of ['brightness', 'contrast', 'marker-size', 'show-names', 'show-trails',
    'scrubber']) {
    $(id).addEventListener('change', () => $(id).blur());
    $(id).addEventListener('pointerup', () => setTimeout(() => $(id).blur(), 0));
  }
  $('reset-display').addEventListener('click', (e) => {
    app.setDisplay(1, 1);
    e.currentTarget.blur();
  });
  $('help-button').addEventListener('click', (e) => {
    toggle('help');
    e.currentTarget.blur();
  });
  $('scrubber').addEventListener('input', () => app.seekVideo(Number($('scrubber').value)));
  $('add-frame').addEventListener('click', (e) => {
    e.currentTarget.blur();
    app.addVideoFrame();
  });
  $('leave-video').addEventListener('click', (e) => {
    e.currentTarget.blur();
    app.leaveVideo();
  });
  $('help').addEventListener('click', () => toggle('help', false));
  $('goto-form').addEventListener('submit', (e) => {
    e.preventDefault();
    $('goto-input').blur(); // keys go back to the labeler
    toggle('goto', false);
    app.goto($('goto-input').value);
  });
}

function setMarkerSize(app, r) {
  app.view.setRadius(r);
  $('marker-size').value = app.view.radius;
  app.saveSettings();
  app.render();
}

function toggleNames(app, on = !app.showNames) {
  app.showNames = on;
  $('show-names').checked = on;
  app.saveSettings();
  app.drawOverlay();
}

function toggleTrails(app, on = !app.showTrails) {
  app.showTrails = on;
  $('show-trails').checked = on;
  app.saveSettings();
  app.drawOverlay();
}

function toggle(id, show) {
  const e = $(id);
  e.hidden = show === undefined ? !e.hidden : !show;
  if (id === 'goto' && !e.hidden) {
    $('goto-input').value = '';
    $('goto-input').focus();
  }
}

// Fields that take typed text keep their keys; sliders, checkboxes, selects and buttons do
// not (an arrow key after clicking the brightness slider steps the frame, not the slider).
function isTextField(target) {
  if (target instanceof HTMLTextAreaElement) return true;
  if (!(target instanceof HTMLInputElement)) return false;
  return !['range', 'checkbox', 'radio', 'button', 'submit', 'color'].includes(target.type);
}

function onKey(app, e, setSpace) {
  const typing = isTextField(e.target);
  if (e.key === 'Escape') {
    const open = !$('help').hidden || !$('goto').hidden;
    toggle('help', false);
    toggle('goto', false);
    if (app.drag) app.endDrag(false);
    else if (app.group) app.clearGroup();
    else if (app.video && !open) app.leaveVideo();
    return;
  }
  if (typing || (!app.folder && !app.video)) return;
  if (e.target instanceof HTMLElement && e.target.matches('input, select, button')) {
    e.target.blur(); // its own key handling (a slider step, a button press) must not run
  }
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const mod = e.ctrlKey || e.metaKey;
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  let handled = true;
  if (mod && key === 'z') {
    if (e.shiftKey) app.redo();
    else app.undo();
  } else if (mod && key === 'y') app.redo();
  else if (mod && key === 's') app.saveNow();
  else if (mod && key === 'a') app.selectAll();
  else if ((mod || e.altKey) && arrows[e.key]) {
    const step = e.shiftKey ? 10 : 1;
    app.nudge(arrows[e.key][0] * step, arrows[e.key][1] * step);
  } else if (mod || e.altKey) handled = false; // leave browser shortcuts alone
  else if (!$('help').hidden && e.key !== '?') handled = false;
  else {
    const repeatable = ['a', 'd', 'w', 's', 'ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown',
      '+', '=', '-', '[', ']', 'PageUp', 'PageDown'];
    if (e.repeat && !repeatable.includes(key)) {
      e.preventDefault();
      return;
    }
    handled = (app.video ? videoKey(app, key, e) : labelKey(app, key, e)) || viewKey(app, key, setSpace);
  }
  if (handled) e.preventDefault();
}

function labelKey(app, key, e) {
  switch (key) {
    case 'a':
    case 'ArrowLeft':
      if (e.shiftKey) app.nextMissing(-1);
      else app.goFrame(app.frame - 1);
      break;
    case 'd':
    case 'ArrowRight':
      if (e.shiftKey) app.nextMissing(1);
      else app.goFrame(app.frame + 1);
      break;
    case 'w':
    case 'ArrowUp':
      app.setActive(app.active - 1);
      break;
    case 's':
    case 'ArrowDown':
      app.setActive(app.active + 1);
      break;
    case 'Backspace':
    case 'Delete':
      app.deleteActive();
      break;
    case 'x':
      app.toggleNotVisible();
      break;
    case 'c':
      app.copyNearest();
      break;
    case 'Enter':
      app.acceptPredictions(e.shiftKey);
      break;
    case 'n':
      app.nextSuggestion(e.shiftKey ? -1 : 1);
      break;
    case 'm':
      app.setMode(MODES[(MODES.indexOf(app.mode) + 1) % MODES.length]);
      break;
    default:
      if (/^[1-9]$/.test(key) && Number(key) <= app.bodyparts.length) {
        app.setActive(Number(key) - 1);
      } else return false;
  }
  return true;
}

function videoKey(app, key, e) {
  const big = e.shiftKey ? 10 : 1;
  switch (key) {
    case 'a':
    case 'ArrowLeft':
      app.stepVideo(-big);
      break;
    case 'd':
    case 'ArrowRight':
      app.stepVideo(big);
      break;
    case 'PageUp':
      app.stepVideo(-100);
      break;
    case 'PageDown':
      app.stepVideo(100);
      break;
    case 'Home':
      app.seekVideo(0);
      break;
    case 'End':
      app.seekVideo(app.video.info.n_frames - 1);
      break;
    case 'e':
    case 'Enter':
      app.addVideoFrame();
      break;
    default:
      return false;
  }
  return true;
}

function viewKey(app, key, setSpace) {
  switch (key) {
    case 'g':
      toggle('goto', true);
      break;
    case '?':
      toggle('help');
      break;
    case 'f':
      app.view.fit();
      break;
    case 'z':
      app.fitAnimal();
      break;
    case '0':
      app.view.setZoom(1, ...(app.pointer || []));
      break;
    case '+':
    case '=':
      app.view.zoomAt(2, ...(app.pointer || []));
      break;
    case '-':
      app.view.zoomAt(0.5, ...(app.pointer || []));
      break;
    case '[':
      setMarkerSize(app, app.view.radius - 1);
      break;
    case ']':
      setMarkerSize(app, app.view.radius + 1);
      break;
    case 'p':
      app.showPredictions = !app.showPredictions;
      app.drawOverlay();
      break;
    case 'v':
      app.showLabels = !app.showLabels;
      app.render();
      break;
    case 'l':
      toggleNames(app);
      break;
    case 't':
      toggleTrails(app);
      break;
    case ' ':
      setSpace(true);
      break;
    default:
      return false;
  }
  return true;
}
