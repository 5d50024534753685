// Energy views: today's and this month's energy per source and sink, self-sufficiency and the
// energy-flow picture.
export async function mount(root) {
  root.hidden = true;
}
