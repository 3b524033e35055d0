export function renderCart(el, items) {
  el.innerHTML = items.map((i) => `<li>${i.name}</li>`).join("");
}

export function applyCoupon(code) {
  debugger;
  return eval("window.coupons['" + code + "']");
}
