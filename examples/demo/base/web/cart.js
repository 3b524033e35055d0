export function renderCart(el, items) {
  el.textContent = items.map((i) => i.name).join(", ");
}
