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
      hit: panOnly ? null : app.grabAt(sx, sy), // a marker or a hollow prediction
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
  const filter = () => view.setFilter(Number($('brightness').value), Number($('contrast').value));
  $('brightness').addEventListener('input', filter);
  $('contrast').addEventListener('input', filter);
  for (const id of ['brightness', 'contrast']) {
    $(id).addEventListener('change', () => $(id).blur());
  }
  $('reset-display').addEventListener('click', (e) => {
    $('brightness').value = 1;
    $('contrast').value = 1;
    filter();
    e.currentTarget.blur();
  });
  $('help-button').addEventListener('click', (e) => {
    toggle('help');
    e.currentTarget.blur();
  });
  $('help').addEventListener('click', () => toggle('help', false));
  $('goto-form').addEventListener('submit', (e) => {
    e.preventDefault();
    $('goto-input').blur(); // keys go back to the labeler
    toggle('goto', false);
    app.goto($('goto-input').value);
  });
}

function toggle(id, show) {
  const e = $(id);
  e.hidden = show === undefined ? !e.hidden : !show;
  if (id === 'goto' && !e.hidden) {
    $('goto-input').value = '';
    $('goto-input').focus();
  }
}

function onKey(app, e, setSpace) {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
  if (e.key === 'Escape') {
    toggle('help', false);
    toggle('goto', false);
    if (app.drag) app.endDrag(false);
    return;
  }
  if (typing || !app.folder) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const mod = e.ctrlKey || e.metaKey;
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  let handled = true;
  if (mod && key === 'z') {
    if (e.shiftKey) app.redo();
    else app.undo();
  } else if (mod && key === 'y') app.redo();
  else if (mod && key === 's') app.saveNow();
  else if ((mod || e.altKey) && arrows[e.key]) {
    const step = e.shiftKey ? 10 : 1;
    app.nudge(arrows[e.key][0] * step, arrows[e.key][1] * step);
  } else if (mod || e.altKey) handled = false; // leave browser shortcuts alone
  else if (!$('help').hidden && e.key !== '?') handled = false;
  else {
    const repeatable = ['a', 'd', 'w', 's', 'ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown',
      '+', '=', '-'];
    if (e.repeat && !repeatable.includes(key)) {
      e.preventDefault();
      return;
    }
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
        app.copyPrevious();
        break;
      case 'Enter':
        app.acceptPredictions();
        break;
      case 'g':
        toggle('goto', true);
        break;
      case '?':
        toggle('help');
        break;
      case 'm':
        app.setMode(MODES[(MODES.indexOf(app.mode) + 1) % MODES.length]);
        break;
      case 'f':
        app.view.fit();
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
      case 'p':
        app.showPredictions = !app.showPredictions;
        app.drawOverlay();
        break;
      case 'v':
        app.showLabels = !app.showLabels;
        app.drawOverlay();
        break;
      case ' ':
        setSpace(true);
        break;
      default:
        if (/^[1-9]$/.test(key) && Number(key) <= app.bodyparts.length) {
          app.setActive(Number(key) - 1);
        } else handled = false;
    }
  }
  if (handled) e.preventDefault();
}
