// Loaded into the labeler's page when the app serves it (/label/<project id>/): puts the
// app's page links into the labeler's toolbar, so Label is one page of the app. The labeler
// itself is untouched (poselab/labeler/static).

const parts = location.pathname.split('/');
const pid = parts[parts.indexOf('label') + 1];
const token = new URLSearchParams(location.search).get('token');
const root = `../../${token ? `?token=${encodeURIComponent(token)}` : ''}`;

function link(text, page) {
  const a = document.createElement('a');
  a.textContent = text;
  a.href = `${root}#/${page}/${pid}`;
  a.className = 'app-nav-link';
  a.dataset.page = page;
  return a;
}

function install() {
  const toolbar = document.getElementById('toolbar');
  if (!toolbar || document.getElementById('app-nav')) return;
  const nav = document.createElement('nav');
  nav.id = 'app-nav';
  const current = document.createElement('span');
  current.className = 'app-nav-link current';
  current.textContent = 'Label';
  nav.append(link('Projects', 'projects'), link('Frames', 'frames'), current, link('Train', 'train'),
    link('Analyze', 'analyze'));
  const brand = toolbar.querySelector('.brand');
  if (brand) brand.after(nav);
  else toolbar.prepend(nav);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', install);
else install();
