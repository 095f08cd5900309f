// The example site's own script: opens the widget from page code (the element's open() method).
document.getElementById('open-chat').addEventListener('click', () => {
  const chat = document.querySelector('confab-chat');
  if (chat) chat.open();
});
