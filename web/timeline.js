// The session graph drawn as a timeline: one column per node in creation order (time runs left to
// right), one row ("lane") per branch. A node's first child continues its parent's lane; every further
// child opens a new lane below, so branches read as parallel tracks joined by their parent links.

const COL_WIDTH = 132;
const LANE_HEIGHT = 150;
const THUMB = 96;

// Lanes and columns for `nodes` (creation order). Exported for tests and for keyboard navigation.
export function layoutGraph(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const children = new Map();
  const roots = [];
  for (const n of nodes) {
    if (n.parent && byId.has(n.parent)) {
      if (!children.has(n.parent)) children.set(n.parent, []);
      children.get(n.parent).push(n);
    } else {
      roots.push(n);
    }
  }
  const place = new Map();
  nodes.forEach((n, i) => place.set(n.id, { col: i, lane: 0 }));
  let nextLane = -1;
  const assign = (node, lane) => {
    place.get(node.id).lane = lane;
    (children.get(node.id) || []).forEach((child, k) => assign(child, k === 0 ? lane : ++nextLane));
  };
  for (const root of roots) assign(root, ++nextLane);
  const lanes = Math.max(1, ...[...place.values()].map((p) => p.lane + 1));
  return { place, lanes };
}

function describeNode(node) {
  const what = node.operation === 'describe' ? 'describe' : node.operation.replace('_', ' ');
  const text = node.operation === 'describe' ? node.text || '' : node.prompt || '';
  return `${what} by ${node.author}${text ? `: ${text}` : ''}`;
}

// Renders into `container`. `imageUrl(url)` returns a promise of a displayable URL (blob: on protected
// servers); `onSelect(node)` is called when a node is clicked or activated from the keyboard.
export function renderTimeline(container, session, { selectedId, user, imageUrl, onSelect }) {
  const nodes = session ? session.nodes : [];
  container.replaceChildren();
  if (!nodes.length) return;
  const { place, lanes } = layoutGraph(nodes);
  const width = nodes.length * COL_WIDTH;
  const height = lanes * LANE_HEIGHT;
  container.style.setProperty('--timeline-width', `${width}px`);
  container.style.setProperty('--timeline-height', `${height}px`);

  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('class', 'links');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('aria-hidden', 'true');
  const centre = (p) => [p.col * COL_WIDTH + COL_WIDTH / 2, p.lane * LANE_HEIGHT + 8 + THUMB / 2];
  for (const node of nodes) {
    if (!node.parent || !place.has(node.parent)) continue;
    const [x1, y1] = centre(place.get(node.parent));
    const [x2, y2] = centre(place.get(node.id));
    const path = document.createElementNS(svgNs, 'path');
    // Same lane: a straight line. A branch drops straight down from its parent (nothing else shares the
    // parent's column) and then runs right along its own lane, so it never seems to start at a neighbour.
    const r = 12;
    path.setAttribute(
      'd',
      y1 === y2 ? `M${x1},${y1} H${x2}` : `M${x1},${y1 + THUMB / 2} V${y2 - r} Q${x1},${y2} ${x1 + r},${y2} H${x2}`,
    );
    svg.append(path);
  }
  container.append(svg);

  const heads = session.heads || {};
  const headOwners = new Map();
  for (const [author, id] of Object.entries(heads)) {
    if (!headOwners.has(id)) headOwners.set(id, []);
    headOwners.get(id).push(author);
  }

  for (const node of nodes) {
    const p = place.get(node.id);
    const item = document.createElement('div');
    item.className = `node state-${node.state}`;
    item.setAttribute('role', 'listitem');
    item.dataset.testid = 'timeline-node';
    item.dataset.nodeId = node.id;
    item.dataset.operation = node.operation;
    item.dataset.author = node.author;
    item.dataset.state = node.state;
    item.style.left = `${p.col * COL_WIDTH + (COL_WIDTH - THUMB) / 2}px`;
    item.style.top = `${p.lane * LANE_HEIGHT + 8}px`;

    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'thumb';
    button.setAttribute('aria-label', `Select: ${describeNode(node)} (${node.state})`);
    if (node.id === selectedId) {
      button.setAttribute('aria-current', 'true');
      item.classList.add('selected');
    }
    const image = node.images && node.images[0];
    if (image) {
      const img = document.createElement('img');
      img.alt = describeNode(node);
      img.width = THUMB;
      img.height = THUMB;
      img.loading = 'lazy';
      imageUrl(image.url).then((u) => (img.src = u)).catch(() => {});
      button.append(img);
    } else {
      const placeholder = document.createElement('span');
      placeholder.className = 'placeholder';
      placeholder.textContent =
        node.operation === 'describe' && node.text ? node.text.slice(0, 60) : node.state === 'failed' ? '✕' : '…';
      button.append(placeholder);
    }
    button.addEventListener('click', () => onSelect(node));
    item.append(button);

    const label = document.createElement('div');
    label.className = 'label';
    const op = document.createElement('span');
    op.className = 'operation';
    op.dataset.testid = 'node-operation';
    op.textContent = node.operation.replace('_', ' ');
    const author = document.createElement('span');
    author.className = 'author';
    author.dataset.testid = 'node-author';
    author.textContent = node.author === user ? `${node.author} (you)` : node.author;
    label.append(op, ' · ', author);
    if (headOwners.has(node.id)) {
      const head = document.createElement('span');
      head.className = 'head';
      head.textContent = `head: ${headOwners.get(node.id).join(', ')}`;
      label.append(document.createElement('br'), head);
    }
    item.append(label);
    container.append(item);
  }
}
